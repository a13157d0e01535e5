import { randomBytes } from 'node:crypto';
import { AuthenticationFailed, deriveKey, newKey, seal, unseal, type SealedBox } from '@chango/security';
import { StateError } from './errors.js';
import type { BatchOperation, RocksStore } from './rocks-store.js';

/**
 * A secret field as stored in iam/metadata: the value sealed with a fresh data
 * key (DEK), and the DEK sealed with a KEK named by id. The KEKs themselves are
 * sealed with the master DEK, which only the operator's root secret derives.
 */
export interface Envelope {
  v: 1;
  kek: string;
  dek: SealedBox;
  data: SealedBox;
}

/** The cluster master DEK: HKDF-SHA256 over the root secret with the cluster's stored salt. */
export function deriveMasterDek(rootSecret: Buffer, salt: Buffer): Buffer {
  return deriveKey(rootSecret, salt, 'chango/master-dek/v1');
}

interface KmsMeta {
  format: 1;
  /** HKDF salt for the master DEK; not secret, but per cluster. */
  salt: string;
  /** A known plaintext sealed with the master DEK: opens only with the right root secret. */
  keyCheck: SealedBox;
  createdAt: string;
}

interface KekRecord {
  id: string;
  createdAt: string;
  wrapped: SealedBox;
}

export const KMS_KEYS = {
  meta: 'kms/meta',
  activeKek: 'kms/active-kek',
  kekPrefix: 'kek/',
} as const;

const KEY_CHECK_PLAINTEXT = Buffer.from('chango-key-check-v1', 'utf8');
const KEY_CHECK_AAD = 'kms/key-check';

export interface NewKek {
  id: string;
  ops: BatchOperation[];
  activate: () => void;
}

export class Kms {
  private constructor(
    private readonly masterDek: Buffer,
    private readonly keks: Map<string, Buffer>,
    private activeKekId: string,
  ) {}

  /**
   * Opens the KMS of an existing cluster (checking the root secret against the
   * key-check record), or creates one — salt, key check, first KEK — when the
   * store is empty and `create` is set.
   */
  static async open(store: RocksStore, rootSecret: Buffer, create: boolean): Promise<Kms> {
    const meta = await store.getJson<KmsMeta>(KMS_KEYS.meta);
    if (!meta) {
      if (!create) throw new StateError('KMS_MISSING', `the KMS store ${store.path} holds no KMS: nothing to decrypt with`);
      return Kms.initialise(store, rootSecret);
    }
    const masterDek = deriveMasterDek(rootSecret, Buffer.from(meta.salt, 'base64'));
    try {
      unseal(masterDek, meta.keyCheck, KEY_CHECK_AAD);
    } catch (err) {
      if (!(err instanceof AuthenticationFailed)) throw err;
      throw new StateError(
        'ROOT_SECRET_WRONG',
        'the cluster root secret does not match the one these stores were created with ' +
          `(key check failed in ${store.path}); supply the original root secret of this cluster`,
      );
    }
    const keks = new Map<string, Buffer>();
    for await (const [, record] of store.entries<KekRecord>(KMS_KEYS.kekPrefix)) {
      keks.set(record.id, unsealKek(masterDek, record));
    }
    const active = await store.getJson<{ id: string }>(KMS_KEYS.activeKek);
    if (!active || !keks.has(active.id)) {
      throw new StateError('KMS_CORRUPT', `the KMS store ${store.path} names no usable active KEK`);
    }
    return new Kms(masterDek, keks, active.id);
  }

  private static async initialise(store: RocksStore, rootSecret: Buffer): Promise<Kms> {
    const salt = randomBytes(32);
    const masterDek = deriveMasterDek(rootSecret, salt);
    const meta: KmsMeta = {
      format: 1,
      salt: salt.toString('base64'),
      keyCheck: seal(masterDek, KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD),
      createdAt: new Date().toISOString(),
    };
    const kms = new Kms(masterDek, new Map(), '');
    const first = kms.newKek();
    await store.batch([{ type: 'put', key: KMS_KEYS.meta, value: JSON.stringify(meta) }, ...first.ops]);
    first.activate();
    return kms;
  }

  get activeKek(): string {
    return this.activeKekId;
  }

  get kekCount(): number {
    return this.keks.size;
  }

  /**
   * Makes a new KEK: the ops that store it (wrapped) and mark it active, and
   * `activate` to call once those ops are committed, so that nothing is ever
   * sealed with a KEK the kms store does not hold yet.
   */
  newKek(): NewKek {
    const id = `kek-${new Date().toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(4).toString('hex')}`;
    const key = newKey();
    const record: KekRecord = { id, createdAt: new Date().toISOString(), wrapped: seal(this.masterDek, key, kekAad(id)) };
    return {
      id,
      ops: [
        { type: 'put', key: `${KMS_KEYS.kekPrefix}${id}`, value: JSON.stringify(record) },
        { type: 'put', key: KMS_KEYS.activeKek, value: JSON.stringify({ id }) },
      ],
      activate: () => {
        this.keks.set(id, key);
        this.activeKekId = id;
      },
    };
  }

  /** Envelope-encrypts `plaintext`; `context` (the record key and field) must be given again to decrypt. */
  encrypt(plaintext: Buffer | string, context: string): Envelope {
    const kek = this.keks.get(this.activeKekId);
    if (!kek) throw new StateError('KMS_CORRUPT', 'no active KEK loaded');
    const dek = newKey();
    const data = seal(dek, Buffer.isBuffer(plaintext) ? plaintext : Buffer.from(plaintext, 'utf8'), `data|${context}`);
    return { v: 1, kek: this.activeKekId, dek: seal(kek, dek, `dek|${this.activeKekId}|${context}`), data };
  }

  decrypt(envelope: Envelope, context: string): Buffer {
    const kek = this.keks.get(envelope.kek);
    if (!kek) {
      throw new StateError('DECRYPT_FAILED', `${context} is sealed with KEK ${envelope.kek}, which the KMS store does not hold`);
    }
    try {
      const dek = unseal(kek, envelope.dek, `dek|${envelope.kek}|${context}`);
      return unseal(dek, envelope.data, `data|${context}`);
    } catch (err) {
      if (!(err instanceof AuthenticationFailed)) throw err;
      throw new StateError('DECRYPT_FAILED', `${context} does not decrypt: the record was altered or moved`);
    }
  }

  decryptString(envelope: Envelope, context: string): string {
    return this.decrypt(envelope, context).toString('utf8');
  }
}

function kekAad(id: string): string {
  return `kms/kek/${id}`;
}

function unsealKek(masterDek: Buffer, record: KekRecord): Buffer {
  try {
    return unseal(masterDek, record.wrapped, kekAad(record.id));
  } catch {
    throw new StateError('KMS_CORRUPT', `KEK ${record.id} does not unwrap with the master DEK: the KMS store is damaged`);
  }
}
