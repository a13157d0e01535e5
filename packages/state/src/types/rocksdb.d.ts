// Minimal typings for the parts of `rocksdb` 5.x (abstract-leveldown 7) that we use.
// @types/rocksdb describes the 3.x API, so we keep our own, narrow and honest.
declare module 'rocksdb' {
  function rocksdb(location: string): rocksdb.RocksDB;
  namespace rocksdb {
  type Callback<T = void> = (err: Error | null | undefined, value?: T) => void;

  interface OpenOptions {
    createIfMissing?: boolean;
    errorIfExists?: boolean;
    readOnly?: boolean;
    compression?: boolean;
    cacheSize?: number;
    writeBufferSize?: number;
    blockSize?: number;
    maxOpenFiles?: number;
    infoLogLevel?: 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'header';
  }

  interface BatchPut { type: 'put'; key: Buffer | string; value: Buffer | string }
  interface BatchDel { type: 'del'; key: Buffer | string }
  type BatchOperation = BatchPut | BatchDel;

  interface IteratorOptions {
    gt?: Buffer | string;
    gte?: Buffer | string;
    lt?: Buffer | string;
    lte?: Buffer | string;
    keyAsBuffer?: boolean;
    valueAsBuffer?: boolean;
    highWaterMark?: number;
    /** false: entries come without their values (the binding hands out empty ones). */
    values?: boolean;
  }

  interface RocksIterator {
    next(cb: (err: Error | null | undefined, key?: Buffer, value?: Buffer) => void): void;
    end(cb: (err?: Error | null) => void): void;
  }

  interface RocksDB {
    open(options: OpenOptions, cb: (err?: Error | null) => void): void;
    close(cb: (err?: Error | null) => void): void;
    get(key: Buffer | string, options: { asBuffer: true; fillCache?: boolean }, cb: Callback<Buffer>): void;
    batch(ops: BatchOperation[], options: { sync?: boolean }, cb: (err?: Error | null) => void): void;
    iterator(options: IteratorOptions): RocksIterator;
    compactRange(start: Buffer | string, end: Buffer | string, cb: (err?: Error | null) => void): void;
    /** RocksDB's DB::GetProperty, synchronous; "" for an unknown property. */
    getProperty(property: string): string;
  }

  }
  export = rocksdb;
}
