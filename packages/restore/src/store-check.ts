import type { Manifest } from '@chango/archive';
import { collectStats, ControlPlaneState, LOW_MEMORY_TUNING, STORE_NAMES, type PerStore } from '@chango/state';
import { RestoreError } from './errors.js';

export interface StoreCheck {
  /** Records counted in each restored store. */
  records: PerStore<number>;
  keks: number;
  /** Secret fields that were decrypted with the root secret (every one there is). */
  secretsDecrypted: number;
}

/**
 * Proves extracted stores are usable before anything depends on them: opens
 * them read-only with the root secret, decrypts every secret field
 * (collectStats) and compares the record counts with the manifest's.
 *
 * A wrong root secret surfaces as @chango/state's StateError ROOT_SECRET_WRONG
 * and is let through unchanged: its message already says exactly that, in the
 * same words the worker uses at start-up.
 */
export async function checkStores(dir: string, manifest: Manifest, rootSecret: Buffer): Promise<StoreCheck> {
  // One pass over stores nothing else reads: no block cache, so a drill in the worker stays small.
  const state = await ControlPlaneState.open({ dataDir: dir, rootSecret, readOnly: true, tuning: LOW_MEMORY_TUNING });
  try {
    const stats = await collectStats(state);
    const records: PerStore<number> = { kms: stats.kms.records, iam: stats.iam.records, metadata: stats.metadata.records };
    for (const store of STORE_NAMES) {
      const expected = manifest.stores[store].records;
      if (records[store] !== expected) {
        throw new RestoreError(
          'RECORD_COUNT_MISMATCH',
          `the restored ${store} store holds ${records[store]} records, but the backup's manifest.json says ${expected}: ` +
            'the archive is not the checkpoint its manifest describes. Nothing was swapped in; use another backup.',
        );
      }
    }
    return { records, keks: stats.kms.keks, secretsDecrypted: stats.secretsDecrypted };
  } finally {
    await state.close();
  }
}
