import { randomUUID } from 'node:crypto';
import { chmod, lchown, lstat, mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { backupTimestamp } from '@chango/contracts';
import { DIR_MODE, FILE_MODE, STORE_NAMES, type StoreName } from '@chango/state';
import { RestoreError } from './errors.js';
import { extractVerified, type ExtractReport } from './extract.js';
import { chownTree, type Owner } from './owner.js';
import { checkStores, type StoreCheck } from './store-check.js';
import { lockForRestore, STAGING_PREFIX, type RestoreLock } from './restore-lock.js';
import { assertStoresNotInUse } from './stores-in-use.js';
import { syncDir } from './target-tree.js';

export interface RestoreOptions {
  /** The archive's SHA-256 from its `.sha256` sidecar; a mismatch refuses the restore. */
  expectedSha256?: string;
  /** age identities that open an archive encrypted to offline recipients. */
  identities?: readonly string[] | undefined;
  /** When given, the staged stores are opened and every secret decrypted before they are swapped in. */
  rootSecret?: Buffer;
  /** Who the restored stores belong to (the user the worker runs as); see resolveOwner. */
  owner?: Owner;
}

export interface RestoreReport extends ExtractReport {
  dataDir: string;
  /** Where the stores that were in dataDir now are (kept for the operator to remove), or null if there were none. */
  previousMovedTo: string | null;
  storeCheck: StoreCheck | null;
  /** The owner spec applied, or null. */
  owner: string | null;
  /** Staging folders left by restores that died, removed before this one began. */
  removedStaging: string[];
}

const KEPT_PREFIX = '.chango-pre-restore-';

/**
 * Restores an archive into `dataDir` (the parent of kms/, iam/, metadata/):
 *
 * 0. take the data dir's restore lock (a second restore refuses at once,
 *    RESTORE_IN_PROGRESS, naming the holder) and remove staging folders that
 *    restores which died left behind (see lockForRestore);
 * 1. refuse if a process holds the existing stores (STORES_IN_USE);
 * 2. extract into a staging folder INSIDE dataDir (`.chango-restore-<uuid>`):
 *    same filesystem, so the swap below is a few atomic renames; dataDir is
 *    created 0700 if missing;
 * 3. with a root secret, open the staged stores and decrypt every secret
 *    (checkStores): a wrong secret or a bad archive is found here, while
 *    nothing has changed yet;
 * 4. only then, move any existing kms/ iam/ metadata/ into
 *    `.chango-pre-restore-<YYYYMMDDTHHMMSSZ>/` — kept, never deleted: the
 *    operator removes it once the restored master runs — and rename the staged
 *    stores into place;
 * 5. with an owner, the restored stores (and the kept folder) are chowned to it;
 * 6. remove the staging folder.
 *
 * Anything failing before step 4 leaves the existing stores byte for byte as
 * they were and removes the staging folder. manifest.json is never written
 * into dataDir (it is in the report).
 */
export async function restoreInto(dataDir: string, source: Readable, options: RestoreOptions = {}): Promise<RestoreReport> {
  let createdDataDir = false;
  let staging: string;
  let lock: RestoreLock | undefined;
  try {
    createdDataDir = await ensureDataDir(dataDir);
    lock = await lockForRestore(dataDir);
    await assertStoresNotInUse(dataDir);
    staging = join(dataDir, `${STAGING_PREFIX}${randomUUID()}`);
    await mkdir(staging, { mode: DIR_MODE }).catch((err: NodeJS.ErrnoException) => {
      throw new RestoreError('TARGET_INVALID', `cannot create the staging folder ${staging} (${err.code ?? err.message}); check free space and permissions of ${dataDir}`, { cause: err });
    });
  } catch (err) {
    source.destroy();
    await lock?.release();
    if (createdDataDir) await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }

  let swapped = false;
  try {
    const extracted = await extractVerified(source, staging, { expectedSha256: options.expectedSha256, identities: options.identities });
    const storeCheck = options.rootSecret ? await checkStores(staging, extracted.manifest, options.rootSecret) : null;
    // Opening the stores left RocksDB LOG files (created 0644) in them: set the design's modes again, and the owner.
    for (const store of STORE_NAMES) await settleTree(join(staging, store), options.owner);
    // Again, right before the swap: a worker may have been started while the archive was read.
    await assertStoresNotInUse(dataDir);
    const previousMovedTo = await swapStores(dataDir, staging);
    swapped = true;
    await settleOwnership(dataDir, previousMovedTo, createdDataDir, options.owner);
    return { ...extracted, dataDir, previousMovedTo, storeCheck, owner: options.owner?.spec ?? null, removedStaging: lock.removedStaging };
  } finally {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    await lock.release();
    if (createdDataDir && !swapped) await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Creates dataDir (0700) when missing; returns whether it did. Refuses a path that is not a folder. */
async function ensureDataDir(dataDir: string): Promise<boolean> {
  const existing = await stat(dataDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw new RestoreError('TARGET_INVALID', `cannot use the data dir ${dataDir} (${err.code ?? err.message})`, { cause: err });
  });
  if (existing?.isDirectory()) return false;
  if (existing) throw new RestoreError('TARGET_INVALID', `the data dir ${dataDir} exists and is not a folder; point the restore at the folder that holds kms/, iam/ and metadata/`);
  try {
    await mkdir(dataDir, { recursive: true, mode: DIR_MODE });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new RestoreError('TARGET_INVALID', `cannot create the data dir ${dataDir} (${e.code ?? e.message})`, { cause: err });
  }
  return true;
}

/**
 * Moves the existing stores into a kept folder, then the staged ones into
 * place. If a rename fails half-way, the ones already done are renamed back,
 * so dataDir is either all old or all new.
 */
async function swapStores(dataDir: string, staging: string): Promise<string | null> {
  const existing: StoreName[] = [];
  for (const store of STORE_NAMES) {
    if (await lstat(join(dataDir, store)).then(() => true, () => false)) existing.push(store);
  }
  const kept = existing.length > 0 ? await createKeptDir(dataDir) : null;
  const movedAside: StoreName[] = [];
  const placed: StoreName[] = [];
  try {
    for (const store of existing) {
      await rename(join(dataDir, store), join(kept as string, store));
      movedAside.push(store);
    }
    for (const store of STORE_NAMES) {
      await rename(join(staging, store), join(dataDir, store));
      placed.push(store);
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    try {
      for (const store of placed) await rename(join(dataDir, store), join(staging, store));
      for (const store of movedAside) await rename(join(kept as string, store), join(dataDir, store));
      if (kept) await rmdir(kept);
    } catch (undoErr) {
      throw new RestoreError(
        'TARGET_INVALID',
        `the swap of stores in ${dataDir} failed (${e.code ?? e.message}) and could not be undone (${(undoErr as Error).message}): ` +
          `restored stores now in place: ${placed.join(', ') || 'none'}; old stores moved to ${kept}: ${movedAside.join(', ') || 'none'}. ` +
          'Keep the master stopped and put the folders back by hand.',
        { cause: err },
      );
    }
    throw new RestoreError('TARGET_INVALID', `cannot swap the restored stores into ${dataDir} (${e.code ?? e.message}); the existing stores are back in place, unchanged`, { cause: err });
  }
  await syncDir(dataDir);
  if (kept) await syncDir(kept);
  return kept;
}

/** `.chango-pre-restore-<UTC timestamp>`; a second restore within the same second gets `-2`, `-3`, … */
async function createKeptDir(dataDir: string): Promise<string> {
  const base = join(dataDir, `${KEPT_PREFIX}${backupTimestamp(new Date())}`);
  for (let attempt = 1; ; attempt++) {
    const candidate = attempt === 1 ? base : `${base}-${attempt}`;
    try {
      await mkdir(candidate, { mode: DIR_MODE });
      return candidate;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EEXIST' && attempt < 100) continue;
      throw new RestoreError('TARGET_INVALID', `cannot create ${candidate} to keep the existing stores in (${e.code ?? e.message}); nothing was swapped`, { cause: err });
    }
  }
}

/** After the swap: the kept folder to the owner as well, and dataDir itself if this restore created it. */
async function settleOwnership(dataDir: string, kept: string | null, createdDataDir: boolean, owner: Owner | undefined): Promise<void> {
  if (!owner) return;
  try {
    if (kept) await chownTree(kept, owner);
    // A data dir we created is root's 0700 folder: the worker could not even enter it.
    if (createdDataDir) await lchown(dataDir, owner.uid, owner.gid);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new RestoreError(
      'TARGET_INVALID',
      `the restored stores are in place in ${dataDir}, but giving ${kept ?? dataDir} to ${owner.spec} failed (${e.code ?? e.message}); run chown -R ${owner.spec} on it by hand`,
      { cause: err },
    );
  }
}

/**
 * Sets the design's modes (files 0600, folders 0700) below `path`, and the
 * owner when given, without following links (RocksDB creates none; one found
 * here is left alone rather than followed).
 */
async function settleTree(path: string, owner: Owner | undefined): Promise<void> {
  const info = await lstat(path);
  if (info.isSymbolicLink()) return;
  await chmod(path, info.isDirectory() ? DIR_MODE : FILE_MODE);
  if (owner) await lchown(path, owner.uid, owner.gid);
  if (!info.isDirectory()) return;
  for (const entry of await readdir(path)) await settleTree(join(path, entry), owner);
}

