import type { Kms } from './kms.js';
import type { BatchOperation } from './rocks-store.js';
import { perStore, type PerStore, type StoreName } from './stores.js';

/**
 * The writes of one logical change, across stores. Typed writers (iam.ts,
 * metadata.ts) add to it; ControlPlaneState.commit applies it under the write
 * gate, each store's part as one atomic RocksDB batch.
 */
export class Transaction {
  readonly ops: PerStore<BatchOperation[]> = perStore(() => []);

  constructor(readonly kms: Kms) {}

  putJson(store: StoreName, key: string, value: unknown): void {
    this.ops[store].push({ type: 'put', key, value: JSON.stringify(value) });
  }

  delete(store: StoreName, key: string): void {
    this.ops[store].push({ type: 'del', key });
  }
}
