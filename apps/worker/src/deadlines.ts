import type { WorkerConfig } from './config.js';

/**
 * The watchdog's budget per byte of state: 1 MiB/s on top of the floor. A
 * backup reads each byte of state from its checkpoint three times (count, manifest hashes, archive),
 * gzips it (≈ 30 MB/s on one core) and uploads it; a drill through a download, an extraction and a
 * store check. 1 MiB/s is far below any of them, so only a job that is stuck
 * (or a link slower than any backup can live with) reaches its deadline.
 */
export const DEADLINE_BYTES_PER_SECOND = 1024 * 1024;

export type DeadlineSettings = Pick<WorkerConfig, 'jobDeadlineMs' | 'jobDeadlineFloorMs'>;

/**
 * How long one backup or drill of a state of `stateSize` bytes may run before
 * its watchdog stops it: CHANGO_JOB_DEADLINE_MS when set, otherwise the floor
 * (CHANGO_JOB_DEADLINE_FLOOR_MS, 10 min) plus one second per MiB of state.
 */
export function jobDeadlineMs(stateSize: number, settings: DeadlineSettings): number {
  if (settings.jobDeadlineMs > 0) return settings.jobDeadlineMs;
  return settings.jobDeadlineFloorMs + Math.ceil((stateSize / DEADLINE_BYTES_PER_SECOND) * 1000);
}
