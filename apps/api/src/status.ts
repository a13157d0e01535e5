import {
  BACKUP_SCHEDULER_ID,
  parseLeaseValue,
  redisKeys,
  WORKER_HEARTBEAT_TTL_MS,
  type BackupStatus,
  type CopyRecord,
  type CopyTargetStatus,
  type DestinationInventory,
  type RunRecord,
  type VerificationRecord,
} from '@chango/contracts';
import type { RedisLink } from './redis-link.js';

/**
 * `GET /admin/api/backup/status`, read from Redis only (not from a worker), so it
 * answers even while no worker is leader: who leads, the schedule and its
 * next run as BullMQ holds them, and the last success, failure and drill as
 * the workers recorded them, and the destination's count and retention.
 */
export async function readStatus(link: RedisLink): Promise<BackupStatus> {
  const keys = redisKeys(link.prefix);
  const [lease, workers, scheduler, lastSuccess, lastFailure, lastVerify, inventory, lastCopy] = await Promise.all([
    link.redis.get(keys.leader),
    aliveWorkers(link),
    link.backup.getJobScheduler(BACKUP_SCHEDULER_ID),
    link.redis.get(keys.lastSuccess),
    link.redis.get(keys.lastFailure),
    link.redis.get(keys.lastVerify),
    link.redis.get(keys.destinationInventory),
    link.redis.hgetall(keys.lastCopy),
  ]);
  return {
    leader: parseLeaseValue(lease),
    workers,
    schedule: scheduler?.pattern
      ? { cron: scheduler.pattern, timezone: scheduler.tz ?? 'UTC', nextRunAt: scheduler.next ? new Date(scheduler.next).toISOString() : null }
      : null,
    lastSuccess: parseJson<RunRecord>(lastSuccess),
    lastFailure: parseJson<RunRecord>(lastFailure),
    lastVerify: withDrillKind(parseJson<VerificationRecord>(lastVerify)),
    lastCopy: copyTargets(lastCopy),
    destination: parseJson<DestinationInventory>(inventory),
  };
}

/** Node ids of the workers whose heartbeat is fresh. */
export async function aliveWorkers(link: RedisLink): Promise<string[]> {
  return link.redis.zrangebyscore(redisKeys(link.prefix).workers, Date.now() - WORKER_HEARTBEAT_TTL_MS, '+inf');
}

/** The last-copy hash (`success:<destination>`, `failure:<destination>` → CopyRecord JSON) as one entry per target. */
function copyTargets(hash: Record<string, string>): CopyTargetStatus[] {
  const targets = new Map<string, CopyTargetStatus>();
  for (const [field, raw] of Object.entries(hash)) {
    const match = /^(success|failure):(.+)$/.exec(field);
    if (!match?.[1] || !match[2]) continue;
    const target = targets.get(match[2]) ?? { destination: match[2], lastSuccess: null, lastFailure: null };
    target[match[1] === 'success' ? 'lastSuccess' : 'lastFailure'] = parseJson<CopyRecord>(raw);
    targets.set(match[2], target);
  }
  return [...targets.values()].sort((a, b) => a.destination.localeCompare(b.destination));
}

/** Drill records written before drills had kinds were all restore drills, and all read the primary. */
function withDrillKind(record: VerificationRecord | null): VerificationRecord | null {
  return record ? { ...record, kind: record.kind ?? 'restore', source: record.source ?? 'primary' } : null;
}

function parseJson<T>(raw: string | null): T | null {
  if (!raw) return null;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return null;
  }
}
