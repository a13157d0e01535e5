import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Manifest } from '@chango/archive';
import { RestoreError } from './errors.js';
import { extractVerified } from './extract.js';
import { checkStores, type StoreCheck } from './store-check.js';
import { DIR_MODE } from './target-tree.js';

export interface DrillReport {
  manifest: Manifest;
  sha256: string;
  bytes: number;
  storeCheck: StoreCheck;
  durationMs: number;
}

/**
 * The verify drill: proves a backup restores — extracts it into a fresh temp
 * folder under `workDir`, opens the stores with the root secret and decrypts
 * every secret (checkStores) — without touching any live store. The temp
 * folder is always removed, whatever happened.
 */
export async function drill(source: Readable, workDir: string, rootSecret: Buffer, options: { expectedSha256?: string } = {}): Promise<DrillReport> {
  const started = performance.now();
  let dir: string;
  try {
    await mkdir(workDir, { recursive: true, mode: DIR_MODE });
    dir = await mkdtemp(join(workDir, '.chango-drill-'));
  } catch (err) {
    source.destroy();
    const e = err as NodeJS.ErrnoException;
    throw new RestoreError('TARGET_INVALID', `cannot create a drill folder under ${workDir} (${e.code ?? e.message}); check free space and permissions`, { cause: err });
  }
  try {
    const extracted = await extractVerified(source, dir, options);
    const storeCheck = await checkStores(dir, extracted.manifest, rootSecret);
    return { manifest: extracted.manifest, sha256: extracted.sha256, bytes: extracted.bytes, storeCheck, durationMs: performance.now() - started };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
