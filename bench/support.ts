import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { STORE_NAMES } from '@chango/state';
import { newRootSecret } from '../testkit/fixtures.js';
import { seedUntil, sizeMiB } from '../testkit/sized-state.js';

/** What only the benchmarks need: a percentile of their timings, and a seeded state kept between runs (BENCH_SEED_DIR). */

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
