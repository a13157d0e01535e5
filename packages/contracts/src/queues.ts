/**
 * Names shared by the api and the worker: BullMQ queues, job names, and the
 * few plain Redis keys beside them. Everything lives under one prefix
 * (CHANGO_QUEUE_PREFIX, default `chango`), so tests and clusters sharing a
 * Redis stay apart.
 */
export const DEFAULT_QUEUE_PREFIX = 'chango';

export const QUEUES = {
  /** Backups (and later verify drills): one at a time, long-running. */
  backup: 'backup',
  /** Short requests the worker answers for the api: config get/put, object listing. */
  control: 'control',
} as const;

export const BACKUP_JOB = 'backup';
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

export function redisKeys(prefix: string) {
  return {
    /** Sorted set: node id → time of its last heartbeat (ms). */
    workers: `${prefix}:workers`,
    /** The workers' X25519 public key for sealing secrets (see sealed-transport.ts). */
    transportKey: `${prefix}:worker-transport-key`,
  };
}
