import { existsSync } from 'node:fs';
import rocksdb from 'rocksdb';
import type { BatchOperation, RocksDB, RocksIterator } from 'rocksdb';
import { StateError } from './errors.js';
import { liveTables, type LiveTable } from './rocks-files.js';

export type { BatchOperation };

export interface OpenStoreOptions {
  /** Create the store when the folder does not hold one yet. */
  create: boolean;
  /** Open without taking the writer lock (another process may be writing). */
  readOnly?: boolean;
  /** RocksDB memory settings, where the binding's defaults do not fit. */
  tuning?: StoreTuning;
}

/** The binding's memory settings we set (the rest keep its defaults). */
export interface StoreTuning {
  cacheSize?: number;
  writeBufferSize?: number;
  blockSize?: number;
  maxOpenFiles?: number;
}

/**
 * For stores read once, front to back (a checkpoint's count, restore
 * checks): no block cache (nothing is read twice), few open files, so a
 * worker that also holds its live stores does not pay for a second cache.
 */
export const LOW_MEMORY_TUNING: StoreTuning = { cacheSize: 0, maxOpenFiles: 64, blockSize: 16 * 1024 };

/**
 * One RocksDB store with promise-returning calls and the open errors turned
 * into words. Keys are strings (our record keys are ASCII paths such as
 * `user/alice`); values are bytes, usually JSON.
 */
export class RocksStore {
  private constructor(
    readonly path: string,
    private readonly db: RocksDB,
  ) {}

  static async open(path: string, options: OpenStoreOptions): Promise<RocksStore> {
    if (!options.create && !existsSync(`${path}/CURRENT`)) {
      throw new StateError('STORES_MISSING', `no RocksDB store at ${path} (CURRENT file missing)`);
    }
    const db = rocksdb(path);
    await new Promise<void>((resolve, reject) =>
      db.open(
        { createIfMissing: options.create, readOnly: options.readOnly ?? false, compression: true, ...options.tuning },
        (err) => (err ? reject(describeOpenError(path, err)) : resolve()),
      ),
    );
    return new RocksStore(path, db);
  }

  get(key: string): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) =>
      this.db.get(key, { asBuffer: true }, (err, value) => {
        if (err) return /^NotFound/.test(err.message) ? resolve(undefined) : reject(err);
        resolve(value);
      }),
    );
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    const raw = await this.get(key);
    return raw === undefined ? undefined : (JSON.parse(raw.toString('utf8')) as T);
  }

  /** Applies the operations atomically; `sync` waits for the WAL to reach the disk. */
  batch(ops: BatchOperation[], sync = true): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.db.batch(ops, { sync }, (err) => (err ? reject(err) : resolve())));
  }

  /**
   * Opens a cursor over all keys (or those starting with `prefix`). RocksDB pins
   * a snapshot when the cursor is created, synchronously, here: later writes are
   * invisible to it. The checkpoint relies on that.
   */
  cursor(prefix?: string): StoreCursor {
    const range =
      prefix === undefined ? {} : { gte: prefix, lt: Buffer.concat([Buffer.from(prefix), Buffer.from([0xff])]) };
    return new StoreCursor(this.db.iterator({ ...range, keyAsBuffer: true, valueAsBuffer: true, highWaterMark: 256 * 1024 }));
  }

  /**
   * The table files of the store's current version (see rocks-files.ts), read
   * from RocksDB's memory: synchronous, well under a millisecond.
   */
  liveTables(): LiveTable[] {
    return liveTables(this.db.getProperty('rocksdb.sstables'));
  }

  /**
   * How many records the store holds, reading keys only: no value is copied
   * out of RocksDB, so a multi-MiB record costs no Buffer. Every table file of
   * the version is read on the way, checksums verified, so a missing or
   * damaged file fails the count.
   */
  async countRecords(): Promise<number> {
    const cursor = new StoreCursor(this.db.iterator({ keyAsBuffer: false, valueAsBuffer: false, values: false, highWaterMark: 256 * 1024 }));
    let records = 0;
    try {
      for (let keys = await cursor.nextKeys(); keys > 0; keys = await cursor.nextKeys()) records += keys;
    } finally {
      await cursor.close();
    }
    return records;
  }

  /** Every (key, value) under `prefix`, values parsed as JSON. */
  async *entries<T>(prefix: string): AsyncGenerator<[string, T]> {
    const cursor = this.cursor(prefix);
    try {
      for (let entry = await cursor.next(); entry; entry = await cursor.next()) {
        yield [entry[0].toString('utf8'), JSON.parse(entry[1].toString('utf8')) as T];
      }
    } finally {
      await cursor.close();
    }
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
  }
}

export class StoreCursor {
  private closed = false;
  constructor(private readonly it: RocksIterator) {}

  /** The next entry, or undefined at the end. */
  next(): Promise<[Buffer, Buffer] | undefined> {
    return new Promise((resolve, reject) =>
      this.it.next((err, key, value) => {
        if (err) return reject(err);
        resolve(key === undefined || value === undefined ? undefined : [key, value]);
      }),
    );
  }

  /**
   * For a cursor made without values: how many entries the binding fetched in
   * its next go (up to the cursor's highWaterMark of bytes), 0 at the end. The
   * binding hands fetched entries out one callback at a time; taking the count
   * of the rest of the batch at once (its `cache`, a [value, key, …] array in
   * rocksdb 5.x, pinned in package.json) saves a promise and a tick per record.
   */
  async nextKeys(): Promise<number> {
    const first = await new Promise<unknown>((resolve, reject) => this.it.next((err, key) => (err ? reject(err) : resolve(key))));
    if (first === undefined) return 0;
    const cache = (this.it as unknown as { cache?: Buffer[] | null }).cache;
    const rest = cache ? Math.floor(cache.length / 2) : 0;
    if (cache) cache.length = 0;
    return 1 + rest;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve, reject) => this.it.end((err) => (err ? reject(err) : resolve())));
  }
}

function describeOpenError(path: string, err: Error): StateError {
  if (/lock/i.test(err.message)) {
    return new StateError(
      'STORES_LOCKED',
      `the store ${path} is in use by another process (RocksDB lock held on ${path}/LOCK); ` +
        'stop the other chango worker or master that has it open, then retry',
    );
  }
  return new StateError('STORE_OPEN_FAILED', `cannot open the RocksDB store ${path}: ${err.message}`);
}
