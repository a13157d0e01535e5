import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { STORE_NAMES, type PerStore, type StoreName } from '@chango/state';

/** One file of a store, as archived. */
export interface ManifestFile {
  /** POSIX path relative to the archive root, e.g. 'iam/000012.sst'. */
  path: string;
  size: number;
  /** Hex SHA-256 of the file's bytes. */
  sha256: string;
}

export interface StoreManifest {
  /** Record count reported by the checkpoint (the manifest cannot count RocksDB records from files). */
  records: number;
  /** Regular files of the store, sorted by path. */
  files: ManifestFile[];
}

/** `manifest.json`, the first entry of every archive. */
export interface Manifest {
  format: 1;
  /** uuid of the backup. */
  backupId: string;
  /** ISO 8601, UTC. */
  timestamp: string;
  hostname: string;
  chango: { version: string };
  stores: PerStore<StoreManifest>;
}

export interface ManifestInfo {
  backupId: string;
  timestamp: Date;
  hostname: string;
  changoVersion: string;
  records: PerStore<number>;
}

/** Files are hashed through reads of this size: large reads, flat memory whatever the SST size. */
const HASH_READ_BYTES = 256 * 1024;

/**
 * Describes the checkpoint in `checkpointDir`/{kms,iam,metadata}: every regular
 * file with its size and SHA-256, per store, sorted by path.
 *
 * Anything that is neither a regular file nor a directory (a symlink, a socket…)
 * is refused: a checkpoint is plain files we wrote ourselves, and following a
 * link could put files from elsewhere into a backup. Subdirectories are walked
 * (RocksDB may keep e.g. `archive/` for old WALs); an empty one has no entry,
 * since the manifest lists files only.
 */
export async function buildManifest(checkpointDir: string, info: ManifestInfo): Promise<Manifest> {
  return manifestOf(await describeCheckpoint(checkpointDir), info);
}

/** The files of each store of the checkpoint, hashed: what buildManifest starts with, for a caller that hashes while it does something else. */
export async function describeCheckpoint(checkpointDir: string): Promise<PerStore<ManifestFile[]>> {
  const files = {} as PerStore<ManifestFile[]>;
  for (const store of STORE_NAMES) files[store] = await describeStore(checkpointDir, store);
  return files;
}

/** The manifest of a checkpoint whose files describeCheckpoint gave. */
export function manifestOf(files: PerStore<ManifestFile[]>, info: ManifestInfo): Manifest {
  const stores = {} as PerStore<StoreManifest>;
  for (const store of STORE_NAMES) {
    const records = info.records[store];
    if (!Number.isSafeInteger(records) || records < 0) {
      throw new Error(`record count of store ${store} must be a non-negative integer, got ${String(records)}`);
    }
    stores[store] = { records, files: files[store] };
  }
  return {
    format: 1,
    backupId: info.backupId,
    timestamp: info.timestamp.toISOString(),
    hostname: info.hostname,
    chango: { version: info.changoVersion },
    stores,
  };
}

/** The bytes of `manifest.json` as written into the archive. */
export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
}

async function describeStore(checkpointDir: string, store: StoreName): Promise<ManifestFile[]> {
  const storeDir = join(checkpointDir, store);
  const stats = await lstat(storeDir).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`checkpoint has no ${store}/ store folder at ${storeDir} (${err.code ?? err.message})`, { cause: err });
  });
  if (!stats.isDirectory()) {
    throw new Error(`checkpoint store ${store} at ${storeDir} is not a plain folder (${kindOf(stats)})`);
  }
  const relativePaths = await listRegularFiles(checkpointDir, store);
  // Byte order, not locale order: the same checkpoint always gives the same manifest.
  relativePaths.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const files: ManifestFile[] = [];
  for (const path of relativePaths) {
    files.push({ path, ...(await hashFile(join(checkpointDir, ...path.split('/')), path)) });
  }
  return files;
}

/** Relative POSIX paths of the regular files below `root`/`dir`; refuses any other kind of entry. */
async function listRegularFiles(root: string, dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(join(root, ...dir.split('/')), { withFileTypes: true })) {
    const path = posix.join(dir, entry.name);
    checkEntryName(entry.name, path);
    if (entry.isFile()) found.push(path);
    else if (entry.isDirectory()) found.push(...(await listRegularFiles(root, path)));
    else throw new Error(`refusing to back up ${join(root, path)}: not a regular file or folder (${kindOf(entry)})`);
  }
  return found;
}

/**
 * Names archiver would rewrite (it turns `\` into `/`) or that no RocksDB
 * store contains (control characters) are refused, so archive and manifest
 * can never disagree about a path.
 */
function checkEntryName(name: string, path: string): void {
  if (name.includes('\\') || /[\u0000-\u001f\u007f]/u.test(name)) {
    throw new Error(`refusing to back up ${JSON.stringify(path)}: backslash or control character in its name`);
  }
}

/**
 * Reads the file through SHA-256 into one reused buffer: flat memory whatever
 * the SST size, and no dead Buffer per read left for the garbage collector
 * (a read stream allocates one per read: the whole checkpoint's worth).
 */
async function hashFile(absolutePath: string, path: string): Promise<{ size: number; sha256: string }> {
  const before = await lstat(absolutePath);
  if (!before.isFile()) throw new Error(`refusing to back up ${absolutePath}: not a regular file (${kindOf(before)})`);
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(HASH_READ_BYTES);
  let size = 0;
  const file = await open(absolutePath, 'r');
  try {
    for (let read = (await file.read(buffer, 0, buffer.length, null)).bytesRead; read > 0; read = (await file.read(buffer, 0, buffer.length, null)).bytesRead) {
      hash.update(buffer.subarray(0, read));
      size += read;
    }
  } finally {
    await file.close();
  }
  if (size !== before.size) {
    throw new Error(`${path} changed while being hashed (${before.size} bytes before, ${size} read): the checkpoint must be frozen`);
  }
  return { size, sha256: hash.digest('hex') };
}

/** What kind of entry this is, for error messages; Stats and Dirent both qualify. */
function kindOf(entry: Pick<Stats, 'isFile' | 'isDirectory' | 'isSymbolicLink' | 'isSocket' | 'isFIFO'>): string {
  if (entry.isSymbolicLink()) return 'symbolic link';
  if (entry.isFile()) return 'regular file';
  if (entry.isDirectory()) return 'folder';
  if (entry.isSocket()) return 'socket';
  if (entry.isFIFO()) return 'FIFO';
  return 'device';
}
