import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { deriveKey, seal, unseal, type SealedBox } from './sealed-box.js';

/**
 * Secrets the api hands to the worker (an S3 secret key in a config PUT)
 * travel through Redis inside job data. So that Redis never holds them in
 * plaintext, the api seals them to the worker's X25519 public key (ephemeral
 * ECDH + HKDF-SHA256 + AES-256-GCM, a "sealed box"); only a worker can open
 * them. Workers derive the key pair from the cluster root secret, so every
 * worker of the cluster opens what any api sealed, and publish the public half
 * in Redis.
 */
export interface SealedForWorker extends SealedBox {
  /** The api's ephemeral X25519 public key (base64url, raw 32 bytes). */
  epk: string;
}

export interface WorkerTransportKey {
  /** base64url raw X25519 public key, as published in Redis. */
  publicKey: string;
  privateKey: KeyObject;
}

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const INFO = 'chango/worker-transport/v1';

export function workerTransportKey(rootSecret: Buffer): WorkerTransportKey {
  const seed = deriveKey(rootSecret, Buffer.alloc(0), INFO);
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return { publicKey: rawPublicKey(createPublicKey(privateKey)), privateKey };
}

export function sealForWorker(plaintext: string, workerPublicKey: string): SealedForWorker {
  const ephemeral = generateKeyPairSync('x25519');
  const epk = rawPublicKey(ephemeral.publicKey);
  const key = boxKey(diffieHellman({ privateKey: ephemeral.privateKey, publicKey: publicKeyFromRaw(workerPublicKey) }), epk, workerPublicKey);
  // No associated data: the key itself is bound to this sender and recipient (boxKey).
  return { epk, ...seal(key, plaintext, '') };
}

export function openSealedForWorker(sealed: SealedForWorker, worker: WorkerTransportKey): string {
  const key = boxKey(diffieHellman({ privateKey: worker.privateKey, publicKey: publicKeyFromRaw(sealed.epk) }), sealed.epk, worker.publicKey);
  try {
    return unseal(key, sealed, '').toString('utf8');
  } catch {
    throw new Error('a sealed secret from the api does not open with this worker\'s key: the api sealed it for another cluster root secret');
  }
}

function boxKey(shared: Buffer, epk: string, recipient: string): Buffer {
  return deriveKey(shared, Buffer.from(`${epk}.${recipient}`), INFO);
}

function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (!jwk.x) throw new Error('X25519 key without x');
  return jwk.x;
}

function publicKeyFromRaw(x: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
}
