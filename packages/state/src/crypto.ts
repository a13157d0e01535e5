import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** AES-256-GCM output, base64 fields so it can live inside JSON records. */
export interface SealedBox {
  iv: string;
  tag: string;
  ct: string;
}

const IV_BYTES = 12;
export const KEY_BYTES = 32;

/** Thrown when authenticated decryption fails: wrong key, wrong context, or tampered bytes. */
export class AuthenticationFailed extends Error {
  override readonly name = 'AuthenticationFailed';
}

/**
 * Encrypts with AES-256-GCM. `aad` binds the ciphertext to where it is stored
 * (a record key, a KEK id), so a sealed value copied elsewhere will not open.
 */
export function seal(key: Buffer, plaintext: Buffer, aad: string): SealedBox {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), ct: ct.toString('base64') };
}

export function unseal(key: Buffer, box: SealedBox, aad: string): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(box.iv, 'base64'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(box.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(box.ct, 'base64')), decipher.final()]);
  } catch {
    throw new AuthenticationFailed(`authenticated decryption failed (${aad})`);
  }
}

/** The cluster master DEK: HKDF-SHA256 over the root secret with the cluster's stored salt. */
export function deriveMasterDek(rootSecret: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', rootSecret, salt, 'chango/master-dek/v1', KEY_BYTES));
}

export function newKey(): Buffer {
  return randomBytes(KEY_BYTES);
}
