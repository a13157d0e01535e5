import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * The one authenticated encryption of chango-backup: AES-256-GCM with a
 * random 96-bit IV, the fields base64 so a box can live inside JSON (a KMS
 * record, a destination published in Redis, a secret sealed for the worker).
 */
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
 * (a record key, a KEK id, a revision), so a sealed value copied elsewhere will not open.
 */
export function seal(key: Buffer, plaintext: Buffer | string, aad: string): SealedBox {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final()]);
  return { iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), ct: ct.toString('base64') };
}

/** Opens a box sealed with the same key and `aad`; AuthenticationFailed otherwise. */
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

/** A 256-bit key derived with HKDF-SHA256; `info` names what the key is for, so two uses never share a key. */
export function deriveKey(secret: Buffer, salt: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, salt, info, KEY_BYTES));
}

export function newKey(): Buffer {
  return randomBytes(KEY_BYTES);
}
