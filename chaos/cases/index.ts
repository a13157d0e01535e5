/**
 * Every chaos case, in the order the runner takes them, and the --quick subset (one case of each
 * kind: kill -9 in upload, SIGTERM in upload, Redis down without persistence, S3 blackholed
 * mid-upload, small work dir).
 */
import type { ChaosCase } from '../case.js';
import { redisLossCases } from './redis-loss.js';
import { s3FaultCases } from './s3-faults.js';
import { scheduledDefaultsCases } from './scheduled-defaults.js';
import { secondCopyCases } from './second-copy.js';
import { smallWorkDirCases } from './small-workdir.js';
import { workerSignalCases } from './worker-signals.js';

export function allCases(): ChaosCase[] {
  const signals = workerSignalCases();
  return [
    ...signals.filter((c) => c.kind === 'kill -9'),
    ...signals.filter((c) => c.kind === 'SIGTERM'),
    ...secondCopyCases(),
    ...redisLossCases(),
    ...s3FaultCases(),
    ...scheduledDefaultsCases(),
    ...smallWorkDirCases(),
  ];
}

export function quickCases(): ChaosCase[] {
  return allCases().filter((c) => c.quick);
}

/** Cases whose name equals, or starts with, one of `filters` (comma-separated names allowed). */
export function selectCases(filters: string[], quick: boolean): ChaosCase[] {
  const pool = quick ? quickCases() : allCases();
  if (filters.length === 0) return pool;
  const wanted = filters.flatMap((f) => f.split(',')).map((f) => f.trim()).filter(Boolean);
  const chosen = pool.filter((c) => wanted.some((w) => c.name === w || c.name.startsWith(w)));
  const unknown = wanted.filter((w) => !pool.some((c) => c.name === w || c.name.startsWith(w)));
  if (unknown.length > 0) throw new Error(`no such case: ${unknown.join(', ')} (cases: ${pool.map((c) => c.name).join(', ')})`);
  return chosen;
}
