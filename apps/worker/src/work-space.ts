import { readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { formatBytes } from '@chango/telemetry';
import { STORE_NAMES } from '@chango/state';

/**
 * A backup needs room in the work dir for its checkpoint only (the archive
 * streams straight into the upload). On the stores' filesystem that is a few
 * MiB (the tables are hard links; only the logs and the MANIFEST are copied),
 * on another filesystem the state's size (everything is copied). Twice the
 * state is asked for either way: the same work dir serves the restore drills
 * (the downloaded archive beside the restored copy), and a disk that tight
 * should be named before the night it is needed.
 */
export const WORK_SPACE_FACTOR = 2;
const WORK_SPACE_SLACK_BYTES = 8 * 1024 * 1024;

/** Bytes the live stores take on disk (kms/, iam/, metadata/ under the data dir). */
export async function stateBytes(dataDir: string): Promise<number> {
  let total = 0;
  for (const store of STORE_NAMES) total += await treeBytes(join(dataDir, store));
  return total;
}

async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await treeBytes(path);
    else if (entry.isFile()) total += await stat(path).then((s) => s.size, () => 0);
  }
  return total;
}

/** Bytes an unprivileged writer may still use on the filesystem holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return fs.bavail * fs.bsize;
}

export function workSpaceNeeded(stateSize: number): number {
  return stateSize * WORK_SPACE_FACTOR + WORK_SPACE_SLACK_BYTES;
}

/**
 * Refuses a backup before it writes a byte when the work dir cannot hold it:
 * a full disk found half-way costs a checkpoint's worth of I/O and, worse,
 * used to end the worker. Not retried — space does not come back on its own
 * within a backoff; the next scheduled tick tries again.
 */
export async function ensureWorkSpace(workDir: string, stateSize: number): Promise<void> {
  const needed = workSpaceNeeded(stateSize);
  const available = await freeBytes(workDir);
  if (available < needed) {
    throw new UnrecoverableError(
      `not enough free space in the work dir ${workDir}: this backup needs about ${formatBytes(needed)} (${needed} bytes: ` +
        `${WORK_SPACE_FACTOR} × the state's ${formatBytes(stateSize)}, for the checkpoint and the restore drills) but only ` +
        `${formatBytes(available)} (${available} bytes) are available; free space there or point CHANGO_WORK_DIR at a larger disk`,
    );
  }
}

const EXHAUSTION_CODES: Record<string, string> = {
  ENOSPC: 'ran out of space',
  EDQUOT: 'ran out of disk quota',
  EMFILE: 'ran out of file descriptors (this process)',
  ENFILE: 'ran out of file descriptors (the whole system)',
};
// RocksDB's errors carry no code, only words: "IO error: No space left on device While appending to file: …".
const EXHAUSTION_WORDS: [RegExp, string][] = [
  [/No space left on device/i, 'ENOSPC'],
  [/Disk quota exceeded/i, 'EDQUOT'],
  [/Too many open files in system/i, 'ENFILE'],
  [/Too many open files/i, 'EMFILE'],
];

/**
 * A full disk or no file descriptors left, in words that name the work dir,
 * or undefined when `err` is something else. Such a failure is final for the
 * run (retrying in seconds finds the same disk).
 */
export function resourceExhaustion(err: unknown, workDir: string, doing: string): UnrecoverableError | undefined {
  const e = err as { code?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  let code = typeof e?.code === 'string' && e.code in EXHAUSTION_CODES ? e.code : undefined;
  code ??= EXHAUSTION_WORDS.find(([words]) => words.test(message))?.[1];
  if (!code) return undefined;
  return new UnrecoverableError(
    `the work dir ${workDir} ${EXHAUSTION_CODES[code]} (${code}) while ${doing}: ${message}. ` +
      'The partial checkpoint and archive were removed and nothing was committed; free space (a backup needs about ' +
      `${WORK_SPACE_FACTOR} × the state) or point CHANGO_WORK_DIR at a larger disk`,
  );
}
