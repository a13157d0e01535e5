import type { LeaderInfo } from './jobs.js';

/**
 * Names shared by the api and the worker: BullMQ queues, job names, and the
 * few plain Redis keys beside them. Everything lives under one prefix
 * (CHANGO_QUEUE_PREFIX, default `chango`), so tests and clusters sharing a
 * Redis stay apart.
 */
export const DEFAULT_QUEUE_PREFIX = 'chango';

export const QUEUES = {
  /** Backups and verify drills: one at a time, on the leader only, long-running. */
  backup: 'backup',
  /** Short requests the worker answers for the api: config get/put, object listing. */
  control: 'control',
} as const;

export const BACKUP_JOB = 'backup';
/** The second copy of one committed backup (apps/worker copy-job.ts). */
export const COPY_JOB = 'copy';
/** A restore drill of one backup (apps/worker verify-job.ts). */
export const VERIFY_JOB = 'verify';
/** Deduplication id of drills asked through the api: while one is waiting or running, another request gets it. */
export const VERIFY_DEDUPLICATION_ID = 'verify-run';
/** The one BullMQ job scheduler that runs scheduled backups; the leader keeps it equal to the stored destination's schedule. */
export const BACKUP_SCHEDULER_ID = 'backup-schedule';
/** Deduplication id of backup jobs: while one is waiting or running, a second trigger gets that one. */
export const BACKUP_DEDUPLICATION_ID = 'backup-run';

export const CONTROL_JOBS = {
  getConfig: 'config.get',
  putConfig: 'config.put',
  listObjects: 'objects.list',
} as const;

/** A worker is "alive" while its heartbeat is younger than this. */
export const WORKER_HEARTBEAT_TTL_MS = 15_000;
export const WORKER_HEARTBEAT_EVERY_MS = 5_000;

/** Reads the leader lease's value (`<epoch>|<nodeId>|<since ms>`); null when there is none or it is not one. */
export function parseLeaseValue(value: string | null): LeaderInfo | null {
  const match = value ? /^(\d+)\|(.+)\|(\d+)$/.exec(value) : null;
  if (!match?.[1] || !match[2] || !match[3]) return null;
  return { epoch: Number(match[1]), nodeId: match[2], since: new Date(Number(match[3])).toISOString() };
}

export function redisKeys(prefix: string) {
  return {
    /** Sorted set: node id → time of its last heartbeat (ms). */
    workers: `${prefix}:workers`,
    /** The workers' X25519 public key for sealing secrets (see @chango/security sealed-transport.ts). */
    transportKey: `${prefix}:worker-transport-key`,
    /** The leader lease: `<epoch>|<nodeId>|<since ms>`, with a TTL the leader keeps renewing. */
    leader: `${prefix}:leader`,
    /** Counter handing out fencing tokens (epochs), one per lease taken. */
    leaderEpoch: `${prefix}:leader-epoch`,
    /** The latest destination, sealed for the workers, so every master host's metadata store follows it. */
    destination: `${prefix}:destination`,
    /** JSON RunRecord of the last backup that committed / failed for good. */
    lastSuccess: `${prefix}:last-success`,
    lastFailure: `${prefix}:last-failure`,
    /** JSON VerificationRecord of the last restore drill. */
    lastVerify: `${prefix}:last-verify`,
    /** Hash: copy target (its destination label) → JSON CopyTargetStatus, the last copy there that succeeded and that failed for good. */
    lastCopy: `${prefix}:last-copy`,
    /** The destination's inventory (DestinationInventory JSON), written as the leader's walk completes a count. */
    destinationInventory: `${prefix}:destination-inventory`,
    /** Prefix of the per-address counters of wrong tokens (`<this>:<address>`, with the window as TTL). */
    authFailures: `${prefix}:auth-failures`,
    /** Hash of counters the workers keep (shared, so api replicas never double count); fields in @chango/telemetry metric-fields.ts. */
    counters: `${prefix}:counters`,
    /** Hash: the duration histogram of successful backups; fields in @chango/telemetry metric-fields.ts. */
    durationHistogram: `${prefix}:duration-histogram`,
    /** Marker that a job's final outcome is in the ledger (with a TTL): a job taken over after a crash is never counted twice. */
    runRecorded: (jobId: string, outcome: 'success' | 'failure') => `${prefix}:run-recorded:${outcome}:${jobId}`,
    /** Set of archive keys a failed attempt could not remove (the destination was unreachable); the next backup removes them. */
    pendingDiscards: `${prefix}:pending-discards`,
  };
}

/** How a failed backup or drill is retried: this many attempts in all, the first retry after backoffMs, doubling. */
export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
}

/**
 * The BullMQ options of every backup and drill job, wherever it is queued (the
 * api, the schedule, the drill after a scheduled backup): retried with
 * exponential backoff; the newest 1,000 finished jobs stay in the history.
 */
export function backupJobOptions(retry: RetryPolicy) {
  return { attempts: retry.attempts, backoff: { type: 'exponential', delay: retry.backoffMs }, removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } };
}

/** The BullMQ options of a control job (the api asking the worker): one attempt, kept 5 minutes after, an hour when it failed. */
export const CONTROL_JOB_OPTIONS = { attempts: 1, removeOnComplete: { age: 300 }, removeOnFail: { age: 3600 } };
