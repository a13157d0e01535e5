import { closeSync, fstatSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { copyFile, link, mkdir, readdir, rm, rmdir, stat, truncate, unlink, writeFile } from 'node:fs/promises';
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

export interface CheckpointReport<Alongside = undefined> {
  dir: string;
  /** How long commits were held back so that all three stores are captured at one instant. */
  writerPauseMs: number;
  durationMs: number;
  /** true: the table files are hard links to the live ones; false: copies (the work dir is on another filesystem). */
  linked: boolean;
  /** 1, or more when a compaction finished in the middle of a capture and it was taken again. */
  attempts: number;
  stores: PerStore<CheckpointedStore>;
  /** What `options.alongside` gave for the checkpoint returned. */
  alongside: Alongside;
}

export interface CheckpointOptions<Alongside = undefined> {
  /** Stops the checkpoint between files (a job's deadline, a worker stopping); the partial one is removed. */
  signal?: AbortSignal;
  /**
   * Work on the checkpoint's files — the backup hashes them for its manifest — run while its records are
   * counted: the count keeps one core busy (RocksDB reads in a thread of its own), this work the other. Its
   * result is the report's `alongside`; when the count finds a torn capture, it is thrown away and run again
   * on the capture retaken.
   */
  alongside?: (dir: string) => Promise<Alongside>;
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
 *    open each write-ahead log and the MANIFEST and note their sizes, read
 *    CURRENT, and ask RocksDB which tables make the current version (a
 *    property held in memory). All synchronous, and nothing is written to any
 *    disk: a fraction of a millisecond, which is how long commits wait.
 * 2. The gate reopens. Each log and the MANIFEST is copied, through the
 *    descriptor opened in the gate (so a file RocksDB deleted meanwhile is
 *    still read), up to its noted size; the live files are never written to.
 *    The tables are hard-linked — no byte is copied, no record passes through
 *    this process, so neither time nor memory grows with the state or with
 *    its records' sizes.
 * 3. Each store of the checkpoint is opened read-only and its records counted:
 *    RocksDB replays the logs and reads every table, checksums verified.
 *
 * A compaction (background, it does not pass the gate) may finish between the
 * MANIFEST's capture and the tables' links, and delete a table the captured
 * MANIFEST still names: the link or the count then fails, and the capture is
 * taken again. What could never be found that way — a log flushed and deleted
 * between the listing and its opening — is covered by the MANIFEST, captured
 * after the logs: RocksDB deletes a log only once its MANIFEST records the flush.
 *
 * When links cannot reach `targetDir` (another filesystem), the checkpoint is
 * put together beside the stores (STAGING_DIR_NAME) and then copied, file by
 * file, by the kernel. The result either way is plain RocksDB that stock tools
 * (ldb) open.
 */
export async function writeCheckpoint<Alongside = undefined>(
  sources: PerStore<RocksStore>,
  gate: WriteGate,
  targetDir: string,
  options: CheckpointOptions<Alongside> = {},
): Promise<CheckpointReport<Alongside>> {
  const started = performance.now();
  await prepareEmptyDir(targetDir);
  const linked = await linksReach(sources.kms.path, targetDir);
  const assembly = linked ? targetDir : join(dirname(sources.kms.path), STAGING_DIR_NAME, basename(targetDir));
  let lastTear: CaptureTorn | undefined;
  try {
    for (let attempt = 1; attempt <= CAPTURE_ATTEMPTS; attempt++) {
      // The folders first: a mkdir is a write to disk, which the gate must not wait for.
      for (const name of STORE_NAMES) await mkdir(join(assembly, name), { recursive: true, mode: DIR_MODE });
      try {
        const { value: captured, pauseMs } = await gate.exclusive(() => captureAll(sources, assembly));
        try {
          for (const name of STORE_NAMES) await freeze(captured[name], options.signal);
        } finally {
          for (const name of STORE_NAMES) releaseHeld(captured[name]);
        }
        if (!linked) await copyTree(assembly, targetDir, options.signal);
        const { stores, alongside } = await countAlongside(targetDir, options.alongside);
        return { dir: targetDir, writerPauseMs: pauseMs, durationMs: performance.now() - started, linked, attempts: attempt, stores, alongside };
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
  /** Files opened in the gate (logs, MANIFEST), held open until copied, and how many of their bytes belong to the checkpoint. */
  held: HeldFile[];
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

/** A live file opened in the gate: its descriptor keeps its bytes readable even if RocksDB deletes it meanwhile. */
interface HeldFile {
  name: string;
  fd: number;
  /** Its size in the gate: the bytes that belong to the checkpoint (RocksDB only appends to logs and MANIFESTs). */
  size: number;
}

/** Step 1, for the three stores, synchronous: it runs with the write gate closed. */
function captureAll(sources: PerStore<RocksStore>, into: string): PerStore<CapturedStore> {
  const captured: Partial<PerStore<CapturedStore>> = {};
  try {
    for (const name of STORE_NAMES) captured[name] = capture(sources[name], join(into, name));
  } catch (err) {
    for (const store of Object.values(captured)) releaseHeld(store);
    throw err;
  }
  return captured as PerStore<CapturedStore>;
}

function capture(store: RocksStore, into: string): CapturedStore {
  const held: HeldFile[] = [];
  try {
    for (const name of readdirSync(store.path).filter(isWriteAheadLog)) {
      const log = holdIfPresent(store.path, name);
      if (log) held.push(log);
      // Else flushed and deleted since the listing: the MANIFEST, captured next, records that flush.
    }
    const current = readFileSync(join(store.path, 'CURRENT'), 'utf8');
    const manifest = manifestNamedBy(current);
    if (!manifest) throw new StateError('STORE_OPEN_FAILED', `${store.path}/CURRENT does not name a MANIFEST file: the store is damaged`);
    const heldManifest = holdIfPresent(store.path, manifest);
    if (!heldManifest) throw new CaptureTorn(`${store.path}: RocksDB replaced its MANIFEST during the capture`);
    held.push(heldManifest);
    return { source: store.path, into, current, held, tables: store.liveTables() };
  } catch (err) {
    releaseHeld({ held });
    throw err;
  }
}

function holdIfPresent(dir: string, name: string): HeldFile | undefined {
  let fd: number;
  try {
    fd = openSync(join(dir, name), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return { name, fd, size: fstatSync(fd).size };
}

function releaseHeld(store: Pick<CapturedStore, 'held'>): void {
  for (const file of store.held.splice(0)) closeSync(file.fd);
}

/** Step 2 for one store, after the gate reopened. */
async function freeze(store: CapturedStore, signal: AbortSignal | undefined): Promise<void> {
  // First, so that deleted logs' space is given back as early as possible.
  for (let file = store.held.shift(); file; file = store.held.shift()) {
    try {
      await copyPrefix(file, join(store.into, file.name));
    } finally {
      closeSync(file.fd);
    }
  }
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

/**
 * A file of the checkpoint's own holding the first `size` bytes of a held live file. The kernel copies
 * (no Buffer here), reading through the descriptor's /proc/self/fd link, which reaches the open file even
 * after RocksDB deleted its name; whatever RocksDB appended since the gate is cut off.
 */
async function copyPrefix(file: HeldFile, to: string): Promise<void> {
  await copyFile(`/proc/self/fd/${file.fd}`, to);
  await truncate(to, file.size);
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

/** Step 3, with the caller's work on the files beside it; both are over before this returns or throws (a torn count first). */
async function countAlongside<Alongside>(
  dir: string,
  alongside: ((dir: string) => Promise<Alongside>) | undefined,
): Promise<{ stores: PerStore<CheckpointedStore>; alongside: Alongside }> {
  const [counted, beside] = await Promise.allSettled([countAll(dir), alongside ? alongside(dir) : Promise.resolve(undefined as Alongside)]);
  if (counted.status === 'rejected') throw counted.reason;
  if (beside.status === 'rejected') throw beside.reason;
  return { stores: counted.value, alongside: beside.value };
}

/** Every store of the checkpoint opens, and how many records each holds. */
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
