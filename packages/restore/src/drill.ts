import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Manifest } from '@chango/archive';
import { RestoreError } from './errors.js';
import { extractVerified, type ExtractOptions } from './extract.js';
import { isProcessRunning } from './process-liveness.js';
import { checkStores, type StoreCheck } from './store-check.js';
import { DIR_MODE } from '@chango/state';

export interface DrillReport {
  manifest: Manifest;
  sha256: string;
  bytes: number;
  storeCheck: StoreCheck;
  durationMs: number;
  /** Drill folders of drills that died, removed before this one began. */
  removedStale: string[];
}

/** `.chango-drill-<pid>-<random>`: the pid tells whether the drill that made it still runs. */
const DRILL_PREFIX = '.chango-drill-';

/**
 * The verify drill: proves a backup restores — extracts it into a fresh temp
 * folder under `workDir`, opens the stores with the root secret and decrypts
 * every secret (checkStores) — without touching any live store. The temp
 * folder is always removed, whatever happened.
 */
export async function drill(source: Readable, workDir: string, rootSecret: Buffer, options: ExtractOptions = {}): Promise<DrillReport> {
  const started = performance.now();
  let dir: string;
  let removedStale: string[];
  try {
    await mkdir(workDir, { recursive: true, mode: DIR_MODE });
    removedStale = await removeDeadDrillFolders(workDir);
    dir = await mkdtemp(join(workDir, `${DRILL_PREFIX}${process.pid}-`));
  } catch (err) {
    source.destroy();
    const e = err as NodeJS.ErrnoException;
    throw new RestoreError('TARGET_INVALID', `cannot create a drill folder under ${workDir} (${e.code ?? e.message}); check free space and permissions`, { cause: err });
  }
  try {
    const extracted = await extractVerified(source, dir, options);
    const storeCheck = await checkStores(dir, extracted.manifest, rootSecret);
    return { manifest: extracted.manifest, sha256: extracted.sha256, bytes: extracted.bytes, storeCheck, durationMs: performance.now() - started, removedStale };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Removes drill folders under `workDir` whose drill process is gone (killed,
 * crashed): their pid no longer runs. A folder whose pid runs is another
 * drill's and is never touched (a reused pid only keeps a dead folder longer).
 */
async function removeDeadDrillFolders(workDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(workDir)) {
    const pid = Number(/^\.chango-drill-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || isProcessRunning(pid)) continue;
    await rm(join(workDir, name), { recursive: true, force: true });
    removed.push(join(workDir, name));
  }
  return removed;
}
