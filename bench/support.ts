import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { STORE_NAMES } from '@chango/state';
import { newRootSecret } from '../testkit/fixtures.js';
import { seedUntil, sizeMiB, type StateShape } from '../testkit/sized-state.js';

/** What only the benchmarks need: a percentile of their timings, and a seeded state kept between runs (BENCH_SEED_DIR). */

export { percentile } from './percentile.js';

/** BENCH_SHAPE: which records the seeded state is made of (testkit/sized-state.ts); `inventory` unless set. */
export function benchShape(): StateShape {
  const shape = process.env.BENCH_SHAPE ?? 'inventory';
  if (shape !== 'inventory' && shape !== 'large-values') throw new Error(`BENCH_SHAPE must be inventory or large-values, got "${shape}"`);
  return shape;
}

/** A seeded state of `targetMiB` and `shape`, closed; kept in BENCH_SEED_DIR (with its root secret) when set, for the next run. */
export async function seededState(work: string, targetMiB: number, shape: StateShape = 'inventory'): Promise<{ dataDir: string; rootSecret: string; stateMiB: number }> {
  const keep = process.env.BENCH_SEED_DIR;
  const dataDir = keep ? join(keep, shape === 'inventory' ? `state-${targetMiB}MiB` : `state-${targetMiB}MiB-${shape}`) : join(work, 'data');
  const secretFile = `${dataDir}.root-secret`;
  if (keep && existsSync(secretFile)) {
    const rootSecret = (await readFile(secretFile, 'utf8')).trim();
    const stateMiB = await sizeMiB(...STORE_NAMES.map((name) => join(dataDir, name)));
    console.log(`reusing ${stateMiB.toFixed(1)} MiB of seeded state in ${dataDir}`);
    return { dataDir, rootSecret, stateMiB };
  }
  const rootSecret = newRootSecret();
  const seeded = await seedUntil(dataDir, Buffer.from(rootSecret), targetMiB, shape);
  await seeded.state.close();
  if (keep) await writeFile(secretFile, rootSecret, { mode: 0o600 });
  console.log(`seeded ${seeded.stateMiB.toFixed(1)} MiB (${seeded.components} components) in ${seeded.seconds.toFixed(1)} s`);
  return { dataDir, rootSecret, stateMiB: seeded.stateMiB };
}

/**
 * Where a process's resident memory is, from /proc/PID/smaps, in MiB: `heap` (glibc's main arena, [heap]),
 * `arenas` (glibc's per-thread arenas, where the thread pool's and RocksDB's threads allocate: anonymous
 * mappings that start on a 64 MiB boundary and, with the reserved rest after them, span exactly 64 MiB),
 * `anon` (the other anonymous mappings: V8's heap, large mallocs, stacks), `files` (the node binary,
 * libraries, mapped files). Which one grows says who holds the memory.
 */
export async function residentByKind(pid: number): Promise<Record<'heap' | 'arenas' | 'anon' | 'files', number>> {
  const ARENA = 64 * 2 ** 20;
  const maps: { start: number; end: number; perms: string; name: string; rssKb: number }[] = [];
  for (const line of (await readFile(`/proc/${pid}/smaps`, 'utf8')).split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (header) maps.push({ start: parseInt(header[1]!, 16), end: parseInt(header[2]!, 16), perms: header[3]!, name: header[4] ?? '', rssKb: 0 });
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && maps.length > 0) maps[maps.length - 1]!.rssKb = Number(rss[1]);
  }
  const kinds = { heap: 0, arenas: 0, anon: 0, files: 0 };
  maps.forEach((m, i) => {
    const next = maps[i + 1];
    const arena = m.name === '' && m.start % ARENA === 0 && (m.end - m.start === ARENA || (next?.name === '' && next.perms.startsWith('---') && next.start === m.end && next.end - m.start === ARENA));
    const kind = m.name === '[heap]' ? 'heap' : m.name.startsWith('/') ? 'files' : arena ? 'arenas' : 'anon';
    kinds[kind] += m.rssKb / 1024;
  });
  return { heap: Math.round(kinds.heap), arenas: Math.round(kinds.arenas), anon: Math.round(kinds.anon), files: Math.round(kinds.files) };
}
