import { linkSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { copyFile, link, mkdir, readdir, rename, rm, rmdir, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { StateError } from './errors.js';
import { DIR_MODE, FILE_MODE } from './file-modes.js';
import { isWriteAheadLog, manifestNamedBy, newestOptionsFile, type LiveTable } from './rocks-files.js';
import { LOW_MEMORY_TUNING, RocksStore } from './rocks-store.js';
import { STORE_NAMES, type PerStore, type StoreName } from './stores.js';
import type { WriteGate } from './write-gate.js';

export interface CheckpointedStore {
  /** Records in the checkpoint, counted in it (which also reads every table file of it, checksums verified). */
  records: number;
}

export interface CheckpointReport {
  dir: string;
  /** How long commits were held back so that all three stores are captured at one instant. */
  writerPauseMs: number;
  durationMs: number;
  /** true: the table files are hard links to the live ones; false: copies (the work dir is on another filesystem). */
  linked: boolean;
  /** 1, or more when a compaction finished in the middle of a capture and it was taken again. */
  attempts: number;
  stores: PerStore<CheckpointedStore>;
}

export interface CheckpointOptions {
  /** Stops the checkpoint between files (a job's deadline, a worker stopping); the partial one is removed. */
  signal?: AbortSignal;
}

/** Captures taken before giving up, when compactions keep finishing in the middle of one (each takes milliseconds). */
const CAPTURE_ATTEMPTS = 3;

/** Where checkpoints are put together when the work dir is on another filesystem than the stores (links cannot cross). */
export const STAGING_DIR_NAME = '.checkpoint-staging';

/**
 * Writes a point-in-time copy of the three stores into `targetDir`/{kms,iam,metadata}
 * — RocksDB's own Checkpoint, done from outside, since the rocksdb binding has none.
 *
 * What a RocksDB store is at an instant: the table (SST) files of its current
 * version, which never change once written; its MANIFEST, which says which
 * tables make the version; and its write-ahead logs, which hold what the
 * tables do not yet. So, per store:
 *
 * 1. With the write gate closed (no commit in flight, none starting; the
 *    worker is the stores' only writer), for all three stores at one instant:
 *    hard-link each write-ahead log and the MANIFEST and note their sizes,
 *    read CURRENT, and ask RocksDB which tables make the current version (a
 *    property held in memory). All synchronous, a fraction of a millisecond.
 * 2. The gate reopens. Each log and the MANIFEST is replaced by a copy of its
 *    first noted bytes (the links only kept them from being deleted meanwhile;
 *    they are never written to). The tables are hard-linked — no byte is
 *    copied, no record passes through this process, so neither time nor memory
 *    grows with the state or with its records' sizes.
 * 3. Each store of the checkpoint is opened read-only and its records counted:
 *    RocksDB replays the logs and reads every table, checksums verified.
 *
 * A compaction (background, it does not pass the gate) may finish between the
 * MANIFEST's capture and the tables' links, and delete a table the captured
 * MANIFEST still names: the link or the count then fails, and the capture is
 * taken again. What could never be found that way — a log flushed and deleted
 * between the listing and its link — is covered by the MANIFEST, captured after
 * the logs: RocksDB deletes a log only once its MANIFEST records the flush.
 *
 * When links cannot reach `targetDir` (another filesystem), the checkpoint is
 * put together beside the stores (STAGING_DIR_NAME) and then copied, file by
 * file, by the kernel. The result either way is plain RocksDB that stock tools
 * (ldb) open.
 */
export async function writeCheckpoint(
  sources: PerStore<RocksStore>,
  gate: WriteGate,
  targetDir: string,
  options: CheckpointOptions = {},
): Promise<CheckpointReport> {
  const started = performance.now();
  await prepareEmptyDir(targetDir);
  const linked = await linksReach(sources.kms.path, targetDir);
  const assembly = linked ? targetDir : join(dirname(sources.kms.path), STAGING_DIR_NAME, basename(targetDir));
  let lastTear: CaptureTorn | undefined;
  try {
    for (let attempt = 1; attempt <= CAPTURE_ATTEMPTS; attempt++) {
      await mkdir(assembly, { recursive: true, mode: DIR_MODE });
      try {
        const { value: captured, pauseMs } = await gate.exclusive(() => captureAll(sources, assembly));
        for (const name of STORE_NAMES) await freeze(captured[name], options.signal);
        if (!linked) await copyTree(assembly, targetDir, options.signal);
        const stores = await countAll(targetDir);
        return { dir: targetDir, writerPauseMs: pauseMs, durationMs: performance.now() - started, linked, attempts: attempt, stores };
      } catch (err) {
        await emptyDir(targetDir);
        if (!linked) await rm(assembly, { recursive: true, force: true });
        if (!(err instanceof CaptureTorn)) throw err;
        lastTear = err;
      }
    }
    throw new StateError(
      'CHECKPOINT_UNSTABLE',
      `the stores changed under the checkpoint ${CAPTURE_ATTEMPTS} times in a row (${lastTear?.message}); ` +
        'RocksDB finishing compactions back to back can do that once, and the next backup passes; if it repeats, ' +
        'check the live stores with ldb (`ldb --db=<store> checkconsistency`)',
    );
  } catch (err) {
    await rm(targetDir, { recursive: true, force: true });
    throw err;
  } finally {
    if (!linked) {
      await rm(assembly, { recursive: true, force: true });
      await rmdir(dirname(assembly)).catch(() => undefined); // the staging folder itself, unless another checkpoint uses it
    }
  }
}

/** The stores changed between the capture and the links (a compaction finished): take the capture again. */
class CaptureTorn extends Error {}

/** What step 1 noted of one store. */
interface CapturedStore {
  source: string;
  into: string;
  /** CURRENT's content: the name of the MANIFEST captured. */
  current: string;
  /** Files linked in the gate (logs, MANIFEST) and how many of their bytes belong to the checkpoint. */
  prefixes: { name: string; size: number }[];
  tables: LiveTable[];
}

async function prepareEmptyDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DIR_MODE });
  if ((await readdir(dir)).length > 0) {
    throw new StateError('CHECKPOINT_TARGET_EXISTS', `checkpoint folder ${dir} is not empty; refusing to mix states`);
  }
}

/** Whether a hard link from the stores' filesystem can be made in `dir` (tried with a store's CURRENT, removed at once). */
async function linksReach(storePath: string, dir: string): Promise<boolean> {
  const probe = join(dir, '.link-probe');
  try {
    await link(join(storePath, 'CURRENT'), probe);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EXDEV') return false;
    throw err;
  }
  await unlink(probe);
  return true;
}

/** Step 1, for the three stores, synchronous: it runs with the write gate closed. */
function captureAll(sources: PerStore<RocksStore>, into: string): PerStore<CapturedStore> {
  const captured = {} as PerStore<CapturedStore>;
  for (const name of STORE_NAMES) captured[name] = capture(sources[name], join(into, name));
  return captured;
}

function capture(store: RocksStore, into: string): CapturedStore {
  mkdirSync(into, { mode: DIR_MODE });
  const prefixes: CapturedStore['prefixes'] = [];
  for (const name of readdirSync(store.path).filter(isWriteAheadLog)) {
    if (linkIfPresent(join(store.path, name), join(into, name))) prefixes.push({ name, size: statSync(join(into, name)).size });
    // Else flushed and deleted since the listing: the MANIFEST, captured next, records that flush.
  }
  const current = readFileSync(join(store.path, 'CURRENT'), 'utf8');
  const manifest = manifestNamedBy(current);
  if (!manifest) throw new StateError('STORE_OPEN_FAILED', `${store.path}/CURRENT does not name a MANIFEST file: the store is damaged`);
  if (!linkIfPresent(join(store.path, manifest), join(into, manifest))) {
    throw new CaptureTorn(`${store.path}: RocksDB replaced its MANIFEST during the capture`);
  }
  prefixes.push({ name: manifest, size: statSync(join(into, manifest)).size });
  return { source: store.path, into, current, prefixes, tables: store.liveTables() };
}

function linkIfPresent(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Step 2 for one store, after the gate reopened. */
async function freeze(store: CapturedStore, signal: AbortSignal | undefined): Promise<void> {
  // First, so that the live logs and MANIFEST are shared for as short as possible.
  for (const { name, size } of store.prefixes) await keepPrefix(join(store.into, name), size);
  for (const table of store.tables) {
    signal?.throwIfAborted();
    const linkedTable = join(store.into, table.name);
    try {
      await link(join(store.source, table.name), linkedTable);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CaptureTorn(`${store.source}/${table.name} was compacted away before it was linked`);
      throw err;
    }
    const size = (await stat(linkedTable)).size;
    if (size !== table.size) throw new CaptureTorn(`${store.source}/${table.name} holds ${size} bytes, RocksDB's version says ${table.size}`);
  }
  await writeFile(join(store.into, 'CURRENT'), store.current, { mode: FILE_MODE });
  // The options the store was written with (RocksDB and ldb open without them, with defaults) and its identity.
  const names = await readdir(store.source);
  for (const name of [newestOptionsFile(names), 'IDENTITY']) {
    if (name && names.includes(name)) await copyFile(join(store.source, name), join(store.into, name)).catch(ignoreMissing);
  }
}

/** Replaces a link to a live file by a file of its own holding the first `size` bytes; the live file is never written. */
async function keepPrefix(path: string, size: number): Promise<void> {
  const own = `${path}.prefix`;
  await copyFile(path, own);
  await truncate(own, size);
  await rename(own, path);
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

/** Copies a checkpoint put together elsewhere, file by file (the kernel copies: no Buffer here). */
async function copyTree(from: string, to: string, signal: AbortSignal | undefined): Promise<void> {
  for (const name of STORE_NAMES) {
    await mkdir(join(to, name), { mode: DIR_MODE });
    for (const file of await readdir(join(from, name))) {
      signal?.throwIfAborted();
      await copyFile(join(from, name, file), join(to, name, file));
    }
  }
}

/** Step 3: every store of the checkpoint opens, and how many records each holds. */
async function countAll(dir: string): Promise<PerStore<CheckpointedStore>> {
  const stores = {} as PerStore<CheckpointedStore>;
  for (const name of STORE_NAMES) stores[name] = { records: await countRecords(dir, name) };
  return stores;
}

async function countRecords(dir: string, name: StoreName): Promise<number> {
  let store: RocksStore | undefined;
  try {
    store = await RocksStore.open(join(dir, name), { create: false, readOnly: true, tuning: LOW_MEMORY_TUNING });
    return await store.countRecords();
  } catch (err) {
    // A table the captured MANIFEST names but that was compacted away shows here ("No such file"); so would a damaged
    // live store, which fails every attempt and is named in the final error.
    throw new CaptureTorn(`the checkpoint's ${name} store does not read back: ${(err as Error).message}`);
  } finally {
    await store?.close().catch(() => undefined);
  }
}

async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [])) await rm(join(dir, name), { recursive: true, force: true });
}
