import {
  BACKUP_SCHEDULER_ID,
  parseLeaseValue,
  redisKeys,
  type BackupStatus,
  type DestinationInventory,
  type RunRecord,
  type VerificationRecord,
} from '@chango/contracts';
import type { JobQueues } from './queues.js';

/**
 * `GET /admin/api/backup/status`, read from Redis only (not from a worker), so it
 * answers even while no worker is leader: who leads, the schedule and its
 * next run as BullMQ holds them, and the last success, failure and drill as
 * the workers recorded them, and the destination's count and retention.
 */
export async function readStatus(queues: JobQueues): Promise<BackupStatus> {
  const keys = redisKeys(queues.prefix);
  const [lease, workers, scheduler, lastSuccess, lastFailure, lastVerify, inventory] = await Promise.all([
    queues.redis.get(keys.leader),
    queues.aliveWorkers(),
    queues.backup.getJobScheduler(BACKUP_SCHEDULER_ID),
    queues.redis.get(keys.lastSuccess),
    queues.redis.get(keys.lastFailure),
    queues.redis.get(keys.lastVerify),
    queues.redis.get(keys.destinationInventory),
  ]);
  return {
    leader: parseLeaseValue(lease),
    workers,
    schedule: scheduler?.pattern
      ? { cron: scheduler.pattern, timezone: scheduler.tz ?? 'UTC', nextRunAt: scheduler.next ? new Date(scheduler.next).toISOString() : null }
      : null,
    lastSuccess: parseJson<RunRecord>(lastSuccess),
    lastFailure: parseJson<RunRecord>(lastFailure),
    lastVerify: parseJson<VerificationRecord>(lastVerify),
    destination: parseJson<DestinationInventory>(inventory),
  };
}

function parseJson<T>(raw: string | null): T | null {
  if (!raw) return null;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return null;
  }
}
