import { existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildManifest, type Manifest } from '@chango/archive';
import { ControlPlaneState, seedState, STORE_NAMES } from '@chango/state';
import { newRootSecret } from './fixtures.js';

const SEED_STEP_COMPONENTS = 5000;

/** MiB on disk below `paths`; files RocksDB deletes while we look (compaction) are skipped. */
export async function sizeMiB(...paths: string[]): Promise<number> {
  let bytes = 0;
  for (const path of paths) {
    for (const entry of await readdir(path, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      bytes += await stat(join(entry.parentPath, entry.name)).then((s) => s.size, () => 0);
    }
  }
  return bytes / 2 ** 20;
}

export interface SeededState {
  state: ControlPlaneState;
  stateMiB: number;
  components: number;
  seconds: number;
}

/**
 * Seeds `dataDir` (200 users, then components in steps) until its stores take
 * at least `targetMiB` on disk, measured after a reopen so the write-ahead log
 * has been flushed into SST files: the state as it rests. Returns it open.
 */
export async function seedUntil(dataDir: string, rootSecret: Buffer, targetMiB: number): Promise<SeededState> {
  const open = () => ControlPlaneState.open({ dataDir, rootSecret, create: true });
  const storeDirs = STORE_NAMES.map((name) => join(dataDir, name));
  const started = performance.now();
  let state = await open();
  await seedState(state, { users: 200, components: 0 });
  let components = 0;
  let stateMiB = 0;
  while (stateMiB < targetMiB) {
    await seedState(state, { users: 0, components: SEED_STEP_COMPONENTS });
    components += SEED_STEP_COMPONENTS;
    await state.close();
    state = await open();
    stateMiB = await sizeMiB(...storeDirs);
  }
  return { state, stateMiB, components, seconds: (performance.now() - started) / 1000 };
}

/** p-th percentile (0–100) of `values`, nearest rank. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

/** A seeded state of `targetMiB`, closed; kept in BENCH_SEED_DIR (with its root secret) when set, for the next run. */
export async function seededState(work: string, targetMiB: number): Promise<{ dataDir: string; rootSecret: string; stateMiB: number }> {
  const keep = process.env.BENCH_SEED_DIR;
  const dataDir = keep ? join(keep, `state-${targetMiB}MiB`) : join(work, 'data');
  const secretFile = `${dataDir}.root-secret`;
  if (keep && existsSync(secretFile)) {
    const rootSecret = (await readFile(secretFile, 'utf8')).trim();
    const stateMiB = await sizeMiB(...STORE_NAMES.map((name) => join(dataDir, name)));
    console.log(`reusing ${stateMiB.toFixed(1)} MiB of seeded state in ${dataDir}`);
    return { dataDir, rootSecret, stateMiB };
  }
  const rootSecret = newRootSecret();
  const seeded = await seedUntil(dataDir, Buffer.from(rootSecret), targetMiB);
  await seeded.state.close();
  if (keep) await writeFile(secretFile, rootSecret, { mode: 0o600 });
  console.log(`seeded ${seeded.stateMiB.toFixed(1)} MiB (${seeded.components} components) in ${seeded.seconds.toFixed(1)} s`);
  return { dataDir, rootSecret, stateMiB: seeded.stateMiB };
}

/** A checkpoint of the state in `dataDir`, taken into `checkpointDir`, and its manifest, as the worker makes them. */
export async function checkpointWithManifest(dataDir: string, rootSecret: string, checkpointDir: string): Promise<Manifest> {
  const state = await ControlPlaneState.open({ dataDir, rootSecret: Buffer.from(rootSecret) });
  let checkpoint;
  try {
    checkpoint = await state.checkpoint(checkpointDir);
  } finally {
    await state.close();
  }
  return buildManifest(checkpointDir, {
    backupId: '00000000-0000-4000-8000-000000000000',
    timestamp: new Date(),
    hostname: 'bench',
    changoVersion: 'bench',
    records: { kms: checkpoint.stores.kms.records, iam: checkpoint.stores.iam.records, metadata: checkpoint.stores.metadata.records },
  });
}
