import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isStateError, LOW_MEMORY_TUNING, RocksStore } from '@chango/state';
import { RestoreError } from './errors.js';
import { lockHolder } from './stores-in-use.js';

/** The lock a restore holds on its data dir, for its whole length. */
export const RESTORE_LOCK_DIR = '.chango-restore.lock';
/** Staging folders of restores: `<prefix><uuid>` inside the data dir. */
export const STAGING_PREFIX = '.chango-restore-';

export interface RestoreLock {
  /** Staging folders of restores that died, removed when the lock was taken. */
  removedStaging: string[];
  release(): Promise<void>;
}

/**
 * Takes the data dir's restore lock, or refuses at once naming the process
 * that holds it: two restores into one data dir would swap each other's
 * stores away. The lock is the kernel's POSIX lock on the LOCK file of a tiny
 * RocksDB at `<dataDir>/.chango-restore.lock/` — RocksDB takes it when it
 * opens (Node has no flock of its own), the kernel drops it when the process
 * ends however it ends, and /proc/locks names the holder.
 *
 * Holding it, any staging folder in the data dir belongs to a restore that
 * died (a live one would hold the lock): those are removed, and said.
 *
 * Released by removing the lock folder while still holding it, then closing:
 * the data dir holds only kms/ iam/ metadata/ again, and a restore that tries
 * meanwhile still finds the lock taken (a kill -9 leaves the folder; the next
 * restore takes it over).
 */
export async function lockForRestore(dataDir: string): Promise<RestoreLock> {
  const path = join(dataDir, RESTORE_LOCK_DIR);
  let store: RocksStore;
  try {
    store = await RocksStore.open(path, { create: true, tuning: LOW_MEMORY_TUNING });
  } catch (err) {
    if (!isStateError(err, 'STORES_LOCKED')) {
      throw new RestoreError('TARGET_INVALID', `cannot take the restore lock ${path} (${(err as Error).message}); check the permissions of ${dataDir}`, { cause: err });
    }
    const pid = await lockHolder(join(path, 'LOCK'));
    const holder = pid ? `process ${pid}` : pid === 0 ? 'a process in another pid namespace' : 'this process';
    throw new RestoreError('RESTORE_IN_PROGRESS', `another restore into ${dataDir} is running (${holder} holds ${join(path, 'LOCK')}): wait for it to end, then run this one again. Nothing was changed.`);
  }
  try {
    const removedStaging: string[] = [];
    for (const name of await readdir(dataDir)) {
      if (!name.startsWith(STAGING_PREFIX)) continue;
      await rm(join(dataDir, name), { recursive: true, force: true });
      removedStaging.push(join(dataDir, name));
    }
    return { removedStaging, release: () => release(store, path) };
  } catch (err) {
    await release(store, path);
    throw new RestoreError('TARGET_INVALID', `cannot remove the staging folders of earlier restores in ${dataDir} (${(err as Error).message})`, { cause: err });
  }
}

async function release(store: RocksStore, path: string): Promise<void> {
  await rm(path, { recursive: true, force: true }).catch(() => undefined);
  // Its files are gone already: whatever RocksDB has to say about closing them changes nothing.
  await store.close().catch(() => undefined);
}
