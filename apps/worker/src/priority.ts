import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * Lowers the CPU priority of every thread of a process — this one unless `pid`
 * says another — to `nice` (0–19; 0 leaves it as started): a backup compresses
 * on both cores, and the api and the control plane it protects should come
 * first when they want the CPU. (The benchmark lowers its local S3 this way.)
 *
 * Linux keeps a nice value per thread (setpriority(PRIO_PROCESS, tid) sets one
 * thread), so each thread running now is lowered; threads started later
 * (libuv's pool, where gzip runs, RocksDB's) inherit it from the thread that
 * starts them. A thread already lower is left alone (raising one back needs
 * privilege). Where /proc/<pid>/task is missing, the calling thread alone (or
 * none, for another process). Returns how many threads were lowered.
 */
export function lowerPriority(nice: number, pid: number | 'self' = 'self'): number {
  if (nice === 0) return 0;
  let threads: number[];
  try {
    threads = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    threads = pid === 'self' ? [0] : [];
  }
  let lowered = 0;
  for (const thread of threads) {
    try {
      if (getPriority(thread) >= nice) continue;
      setPriority(thread, nice);
      lowered++;
    } catch {
      // The thread ended since the listing.
    }
  }
  return lowered;
}
