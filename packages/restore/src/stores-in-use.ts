import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isStateError, RocksStore, STORE_NAMES } from '@chango/state';
import { RestoreError } from './errors.js';

/**
 * Throws STORES_IN_USE if any existing <dataDir>/{kms,iam,metadata} is held by
 * a process (the worker, a master): swapping stores under a running process
 * would lose its writes and leave it writing into the folder kept aside.
 * Missing stores are fine.
 *
 * How: RocksDB holds a POSIX (fcntl) write lock on each store's LOCK file
 * while open for writing. Linux lists every such lock in /proc/locks with the
 * device and inode of the locked file; a store is in use when its LOCK file's
 * device and inode appear there. That reading changes nothing, which matters:
 * the alternative, opening the store with RocksDB to see whether the lock is
 * free, rotates RocksDB's LOG and writes a new MANIFEST and OPTIONS into an
 * idle store, so a restore that later fails would not leave the existing
 * stores byte for byte as they were. It also sees a lock this very process
 * holds, which a second fcntl attempt from the same process would not.
 *
 * /proc/locks shows the locks of the processes in our pid namespace only: a
 * worker in another container that shares the data dir is not seen. Where
 * /proc/locks cannot be read at all (not Linux), the RocksDB open probe is the
 * fallback, with the side effects above.
 */
export async function assertStoresNotInUse(dataDir: string): Promise<void> {
  let locks: LockEntry[] | null | undefined;
  for (const store of STORE_NAMES) {
    const storeDir = join(dataDir, store);
    const lockFile = join(storeDir, 'LOCK');
    const info = await lstat(lockFile, { bigint: true }).catch(() => null);
    // No LOCK file: no RocksDB has ever opened this store, so none holds it.
    if (info === null || !info.isFile()) continue;
    if (locks === undefined) locks = await readProcLocks();
    if (locks === null) {
      await probeWithRocksDb(store, storeDir);
      continue;
    }
    const { major, minor } = splitDev(info.dev);
    const holder = locks.find((lock) => lock.inode === info.ino && lock.major === major && lock.minor === minor);
    if (holder) throw inUse(store, storeDir, holder.pid > 0 ? `process ${holder.pid}` : 'another process');
  }
}

/**
 * The process holding a POSIX lock on `file` as /proc/locks lists it: its pid,
 * 0 when the lock is held but its owner is not in our pid namespace, or
 * undefined when the file is not locked or /proc/locks cannot be read.
 */
export async function lockHolder(file: string): Promise<number | undefined> {
  const info = await lstat(file, { bigint: true }).catch(() => null);
  if (info === null) return undefined;
  const locks = await readProcLocks();
  const { major, minor } = splitDev(info.dev);
  const holder = locks?.find((lock) => lock.inode === info.ino && lock.major === major && lock.minor === minor);
  return holder ? Math.max(0, holder.pid) : undefined;
}

interface LockEntry {
  pid: number;
  major: bigint;
  minor: bigint;
  inode: bigint;
}

/**
 * The locks listed in /proc/locks, or null when it cannot be read. Lines look like
 * `1: POSIX  ADVISORY  WRITE 6300 fe:00:2146583 0 EOF` (a waiting request has
 * `->` after the number; it means the file is locked, so it counts too).
 */
async function readProcLocks(): Promise<LockEntry[] | null> {
  let text: string;
  try {
    text = await readFile('/proc/locks', 'utf8');
  } catch {
    return null;
  }
  const entries: LockEntry[] = [];
  for (const line of text.split('\n')) {
    const match = /^\d+:\s+(?:->\s+)?\S+\s+\S+\s+\S+\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/u.exec(line);
    if (!match) continue;
    const [, pid, major, minor, inode] = match as unknown as [string, string, string, string, string];
    entries.push({ pid: Number(pid), major: BigInt(`0x${major}`), minor: BigInt(`0x${minor}`), inode: BigInt(inode) });
  }
  return entries;
}

/** glibc's dev_t encoding (what stat returns) split into the major and minor numbers /proc/locks prints. */
function splitDev(dev: bigint): { major: bigint; minor: bigint } {
  return {
    major: ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn),
    minor: (dev & 0xffn) | ((dev >> 12n) & ~0xffn),
  };
}

/** Fallback without /proc/locks: open the store for writing and close it again; the lock refusal tells. */
async function probeWithRocksDb(store: string, storeDir: string): Promise<void> {
  let opened: RocksStore;
  try {
    opened = await RocksStore.open(storeDir, { create: false });
  } catch (err) {
    if (isStateError(err, 'STORES_LOCKED')) throw inUse(store, storeDir, 'another process');
    // Not a store RocksDB can open (damaged, half there): nobody holds it, and replacing it is the point.
    return;
  }
  await opened.close();
}

function inUse(store: string, storeDir: string, holder: string): RestoreError {
  return new RestoreError(
    'STORES_IN_USE',
    `the ${store} store in ${storeDir} is in use by ${holder} (RocksDB lock on ${join(storeDir, 'LOCK')}): ` +
      'stop the chango worker (or master) on this host first, then run the restore again. Nothing was changed.',
  );
}
