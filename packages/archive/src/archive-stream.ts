import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { DIR_MODE, FILE_MODE, STORE_NAMES, type StoreName } from '@chango/state';
import { TarArchive } from 'archiver';
import { createParallelGzip } from './gzip-members.js';
import { serializeManifest, type Manifest, type ManifestFile } from './manifest.js';
import { ReadBufferPool } from './read-buffers.js';

export interface ArchiveStreamOptions {
  /** zlib level 0–9 for the parallel gzip. */
  gzipLevel: number;
  /** Members compressed at once; default: the machine's available parallelism. */
  parallelism?: number;
  /** Input bytes per gzip member; default DEFAULT_CHUNK_BYTES. */
  chunkBytes?: number;
  /** Told the size of each piece of checkpoint file read into the archive: progress, against the manifest's total. */
  onRead?: (bytes: number) => void;
}

/** Modes fixed by the design, whatever the checkpoint's own modes: the state holds secrets. */
/** Read size for archived files; 256 KiB keeps the worker's RSS lower than 1 MiB (measured) at the same speed. */
const READ_BYTES = 256 * 1024;

/**
 * The `.tar.gz` of a checkpoint, as a stream: `manifest.json`, then per store
 * its folder (0700) and exactly the files the manifest lists (0600, with their
 * mtimes), all under paths relative to the archive root.
 *
 * archiver builds the tar without compression (`gzip: false`); the bytes go
 * through the parallel gzip. Every failure — archiver, gzip, a file that is
 * missing or no longer matches the manifest — ends the returned stream with an
 * 'error', never a silent short archive, so an upload reading it fails too.
 * When the reader gives up (destroys the stream), file reading stops.
 *
 * Only archive a frozen checkpoint. Each file is re-hashed while archived and
 * compared with the manifest, and it is read through our own stream rather
 * than archiver's `file()`: archiver 8 kills the process (uncatchable error from
 * tar-stream) when a file changes size under it and hangs `finalize()` when a
 * file disappears; our reader stops before either can reach tar-stream.
 *
 * Why not `pipeline(tar, gzip)`: destroying archiver while a file entry is
 * being written makes its tar-stream pack destroy the entry's sink, which
 * re-emits the error where nobody can listen (the sink is internal) and the
 * process dies. So on failure archiver is never destroyed, only detached: the
 * file being read is closed, the half-written entry is left pending, and the
 * whole archiver is garbage once we drop it.
 */
export function createArchiveStream(checkpointDir: string, manifest: Manifest, options: ArchiveStreamOptions): Readable {
  const reads = new ReadBufferPool(READ_BYTES);
  const gzip = createParallelGzip({
    level: options.gzipLevel,
    parallelism: options.parallelism,
    chunkBytes: options.chunkBytes,
    onAbsorbed: (chunk) => reads.absorbed(chunk),
  });
  const tar = new TarArchive({ gzip: false });
  const run: ArchiveRun = { tar, gzip, reads, source: null, stopped: false, onRead: options.onRead };
  const stop = (err?: Error): void => {
    if (run.stopped) return;
    run.stopped = true;
    tar.unpipe(gzip);
    run.source?.destroy();
    if (err) gzip.destroy(err);
  };
  tar.on('error', stop);
  // archiver reports unreadable entries as 'warning' and skips them; for a backup that is data loss.
  tar.on('warning', stop);
  // The reader gave up, gzip failed, or all is done: in every case, read no more files.
  gzip.once('close', () => stop());
  tar.pipe(gzip);
  appendEntries(run, checkpointDir, manifest).catch(stop);
  return gzip;
}

interface ArchiveRun {
  tar: TarArchive;
  gzip: Readable;
  reads: ReadBufferPool;
  /** The file being streamed into the tar, if any. */
  source: Readable | null;
  stopped: boolean;
  onRead: ((bytes: number) => void) | undefined;
}

/**
 * Appends the entries one at a time, each once the previous one is in the tar:
 * archiver would otherwise open every source at once (one file descriptor and
 * one read buffer per SST).
 */
async function appendEntries(run: ArchiveRun, checkpointDir: string, manifest: Manifest): Promise<void> {
  await appendEntry(run, serializeManifest(manifest), {
    name: 'manifest.json',
    mode: FILE_MODE,
    date: new Date(manifest.timestamp),
  });
  for (const store of STORE_NAMES) {
    const written = new Set<string>();
    for (const file of manifest.stores[store].files) {
      const segments = checkedSegments(store, file.path);
      // The store folder and any subfolder come right before their first file.
      for (let depth = 1; depth < segments.length; depth++) {
        const dir = segments.slice(0, depth).join('/');
        if (written.has(dir)) continue;
        await appendDirectory(run, checkpointDir, dir);
        written.add(dir);
      }
      await appendFile(run, checkpointDir, file);
    }
    if (!written.has(store)) await appendDirectory(run, checkpointDir, store);
  }
  await whileRunning(run, run.tar.finalize());
}

async function appendDirectory(run: ArchiveRun, checkpointDir: string, dir: string): Promise<void> {
  const absolute = join(checkpointDir, ...dir.split('/'));
  const stats = await lstat(absolute);
  if (!stats.isDirectory()) throw new Error(`${absolute} is no longer a folder, as the manifest says it is`);
  await appendEntry(run, Buffer.alloc(0), { name: `${dir}/`, type: 'directory', mode: DIR_MODE, date: stats.mtime });
}

async function appendFile(run: ArchiveRun, checkpointDir: string, file: ManifestFile): Promise<void> {
  const absolute = join(checkpointDir, ...file.path.split('/'));
  const stats = await lstat(absolute).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${absolute} is in the manifest but cannot be read (${err.code ?? err.message}): archive only a frozen checkpoint`, { cause: err });
  });
  if (!stats.isFile() || stats.size !== file.size) {
    throw new Error(
      `${absolute} no longer matches the manifest (${stats.isFile() ? `${stats.size} bytes, manifest says ${file.size}` : 'not a regular file'}): archive only a frozen checkpoint`,
    );
  }
  const source = Readable.from(verifiedContent(absolute, file, run.reads, run.onRead), { objectMode: false, highWaterMark: READ_BYTES });
  // A listener for the source's whole life: an 'error' without one would crash the process.
  source.on('error', () => {});
  run.source = source;
  // `stats` makes archiver stream the file into the tar; without it archiver buffers the whole file in memory.
  await appendEntry(run, source, { name: file.path, mode: FILE_MODE, date: stats.mtime, stats });
  run.source = null;
}

/**
 * The file's bytes, checked against the manifest as they pass. Throws before
 * yielding a byte past the manifest size, and at the end on a short read or a
 * different SHA-256; the error ends the archive stream, and tar-stream never
 * sees an entry whose size differs from its header.
 */
async function* verifiedContent(
  absolute: string,
  file: ManifestFile,
  reads: ReadBufferPool,
  onRead: ((bytes: number) => void) | undefined,
): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let size = 0;
  const handle = await open(absolute, 'r');
  try {
    for (;;) {
      const buffer = reads.take();
      const chunk = reads.lend(buffer, (await handle.read(buffer, 0, buffer.length, null)).bytesRead);
      if (chunk.length === 0) break;
      size += chunk.length;
      if (size > file.size) throw new Error(`${absolute} grew past the ${file.size} bytes of the manifest while archived`);
      hash.update(chunk);
      onRead?.(chunk.length);
      yield chunk;
    }
  } finally {
    await handle.close();
  }
  if (size !== file.size) throw new Error(`${absolute} shrank to ${size} bytes while archived; the manifest says ${file.size}`);
  const sha256 = hash.digest('hex');
  if (sha256 !== file.sha256) throw new Error(`${absolute} changed since the manifest was built (SHA-256 ${sha256}, manifest ${file.sha256})`);
}

/** Appends one entry and resolves once archiver has written all of it into the tar. */
function appendEntry(
  run: ArchiveRun,
  source: Buffer | Readable,
  data: { name: string; mode: number; date: Date; type?: 'directory'; stats?: Stats },
): Promise<void> {
  if (run.stopped) return Promise.reject(new Error('archive stream stopped'));
  const written = new Promise<void>((resolve) => run.tar.once('entry', () => resolve()));
  run.tar.append(source, data);
  return whileRunning(run, written, source instanceof Readable ? source : undefined);
}

/**
 * Resolves with `work`, or rejects as soon as archiver or `source` fails or the
 * output closes: the reader (an upload) may destroy the stream at any time, and
 * archiver then never emits the event `work` waits for.
 */
function whileRunning(run: ArchiveRun, work: Promise<void>, source?: Readable): Promise<void> {
  const { tar, gzip } = run;
  return new Promise<void>((resolve, reject) => {
    if (run.stopped) {
      reject(new Error('archive stream stopped'));
      return;
    }
    const onError = (err: Error): void => settle(() => reject(err));
    const onClose = (): void => settle(() => reject(new Error('archive stream closed before the archive was complete')));
    const settle = (then: () => void): void => {
      tar.off('error', onError);
      gzip.off('close', onClose);
      source?.off('error', onError);
      then();
    };
    tar.on('error', onError);
    gzip.on('close', onClose);
    source?.on('error', onError);
    work.then(
      () => settle(resolve),
      (err: Error) => settle(() => reject(err)),
    );
  });
}

/** Splits a manifest path after checking it stays inside its store folder (the manifest may come from outside). */
function checkedSegments(store: StoreName, path: string): string[] {
  const segments = path.split('/');
  const inside =
    segments[0] === store &&
    segments.length >= 2 &&
    segments.every((s) => s !== '' && s !== '.' && s !== '..' && !s.includes('\\')) &&
    posix.normalize(path) === path;
  if (!inside) throw new Error(`manifest path ${JSON.stringify(path)} is not a plain path inside ${store}/`);
  return segments;
}
