import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DIR_MODE } from './file-modes.js';
import { STAGING_DIR_NAME, writeCheckpoint, type CheckpointOptions, type CheckpointReport } from './checkpoint.js';
import { StateError } from './errors.js';
import { IamReader } from './iam.js';
import { Kms } from './kms.js';
import { MetadataReader } from './metadata.js';
import { RocksStore, type OpenStoreOptions } from './rocks-store.js';
import { STORE_NAMES, type PerStore, type StoreName } from './stores.js';
import { Transaction } from './transaction.js';
import { WriteGate } from './write-gate.js';

export const DEFAULT_DATA_DIR = '/var/lib/chango';

export interface OpenStateOptions {
  dataDir: string;
  rootSecret: Buffer;
  /** Create missing stores and a new KMS (first start of a master). Default false. */
  create?: boolean;
  /** Open without the writer lock, alongside a running worker (stats, verify). Default false. */
  readOnly?: boolean;
  /** RocksDB memory settings for every store (e.g. LOW_MEMORY_TUNING for a one-pass read). */
  tuning?: OpenStoreOptions['tuning'];
}

/**
 * The control-plane state of a Chango master: the kms, iam and metadata
 * RocksDB stores under one data dir, opened with the cluster root secret.
 * Only one process may hold it writable (RocksDB's lock); that is the worker.
 */
export class ControlPlaneState {
  readonly iam: IamReader;
  readonly metadata: MetadataReader;
  private readonly gate = new WriteGate();
  private closed = false;
  private readonly running = new Set<Promise<unknown>>();

  private constructor(
    readonly dataDir: string,
    readonly kms: Kms,
    private readonly stores: PerStore<RocksStore>,
  ) {
    this.iam = new IamReader(stores.iam, kms);
    this.metadata = new MetadataReader(stores.metadata, kms);
  }

  static async open(options: OpenStateOptions): Promise<ControlPlaneState> {
    const create = (options.create ?? false) && !(options.readOnly ?? false);
    if (create) mkdirSync(options.dataDir, { recursive: true, mode: DIR_MODE });
    else assertStoresPresent(options.dataDir);
    // Links to tables a killed process left while it assembled a checkpoint: they would keep deleted tables on disk.
    if (!(options.readOnly ?? false)) rmSync(join(options.dataDir, STAGING_DIR_NAME), { recursive: true, force: true });
    const opened: Partial<PerStore<RocksStore>> = {};
    try {
      for (const name of STORE_NAMES) {
        opened[name] = await RocksStore.open(join(options.dataDir, name), { create, readOnly: options.readOnly ?? false, ...(options.tuning ? { tuning: options.tuning } : {}) });
      }
      const stores = opened as PerStore<RocksStore>;
      await assertKmsNotLost(stores);
      const kms = await Kms.open(stores.kms, options.rootSecret, create);
      return new ControlPlaneState(options.dataDir, kms, stores);
    } catch (err) {
      await Promise.all(Object.values(opened).map((store) => store.close().catch(() => undefined)));
      throw err;
    }
  }

  /**
   * Applies the writes that `build` adds, each store's share as one atomic
   * batch, all under the write gate so a checkpoint sees all of them or none.
   */
  async commit(build: (tx: Transaction) => void): Promise<void> {
    const tx = new Transaction(this.kms);
    build(tx);
    await this.gate.shared(async () => {
      this.assertOpen();
      await Promise.all(STORE_NAMES.map((name) => this.stores[name].batch(tx.ops[name])));
    });
  }

  /** Adds a KEK and makes it the one new secrets are sealed with; older KEKs stay to open older records. */
  async rotateKek(): Promise<string> {
    const kek = this.kms.newKek();
    await this.gate.shared(async () => {
      this.assertOpen();
      await this.stores.kms.batch(kek.ops);
    });
    kek.activate();
    return kek.id;
  }

  /** A point-in-time copy of all three stores in `targetDir` (see checkpoint.ts). */
  checkpoint<Alongside = undefined>(targetDir: string, options: CheckpointOptions<Alongside> = {}): Promise<CheckpointReport<Alongside>> {
    this.assertOpen();
    return this.track(writeCheckpoint(this.stores, this.gate, targetDir, options));
  }

  /** Counts every record of one store (keys only are looked at). */
  countRecords(store: StoreName): Promise<number> {
    return this.stores[store].countRecords();
  }

  /** Waits for commits in flight, refuses new ones, closes the stores. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.gate.exclusive(() => (this.closed = true));
    await Promise.allSettled(this.running);
    await Promise.all(STORE_NAMES.map((name) => this.stores[name].close()));
  }

  /** Keeps `work` (which reads through cursors) from outliving the stores: close() waits for it. */
  private track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work);
    const forget = () => this.running.delete(work);
    work.then(forget, forget);
    return work;
  }

  private assertOpen(): void {
    // Writing to a closed RocksDB handle crashes the native binding: refuse in words instead.
    if (this.closed) throw new StateError('STATE_CLOSED', `the control-plane state in ${this.dataDir} is closed`);
  }
}

function assertStoresPresent(dataDir: string): void {
  const missing = STORE_NAMES.filter((name) => !existsSync(join(dataDir, name, 'CURRENT')));
  if (missing.length > 0) {
    throw new StateError(
      'STORES_MISSING',
      `no Chango state in ${dataDir}: ${missing.map((name) => `${name}/`).join(', ')} missing or not a RocksDB store`,
    );
  }
}

/** An empty kms store next to iam/metadata records means the KEKs are gone: refuse rather than start a new KMS. */
async function assertKmsNotLost(stores: PerStore<RocksStore>): Promise<void> {
  if (!(await isEmpty(stores.kms)) || ((await isEmpty(stores.iam)) && (await isEmpty(stores.metadata)))) return;
  throw new StateError(
    'KMS_MISSING',
    `${stores.kms.path} is empty but iam/ and metadata/ hold records sealed with its KEKs; ` +
      'restore kms/ from the same backup as the other stores',
  );
}

async function isEmpty(store: RocksStore): Promise<boolean> {
  const cursor = store.cursor();
  try {
    return (await cursor.next()) === undefined;
  } finally {
    await cursor.close();
  }
}
