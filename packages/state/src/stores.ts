/** The three RocksDB stores of a Chango master, as folders under the data dir. */
export const STORE_NAMES = ['kms', 'iam', 'metadata'] as const;
export type StoreName = (typeof STORE_NAMES)[number];

export type PerStore<T> = Record<StoreName, T>;

export function perStore<T>(make: (name: StoreName) => T): PerStore<T> {
  return { kms: make('kms'), iam: make('iam'), metadata: make('metadata') };
}
