import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { QUEUES, redisKeys } from '@chango/contracts';
import type { JobQueues } from './queues.js';
import { readStatus } from './status.js';

const JOB_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed'] as const;

/**
 * /metrics. Backup figures are read from the shared queue state in Redis at
 * scrape time, never counted per process, so any number of api replicas
 * report the same values. No label or value carries a secret.
 */
export function createMetrics(queues: JobQueues): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // One read of Redis per scrape, shared by every gauge's collect().
  let scrape: Promise<void> | undefined;
  const refresh = (): Promise<void> =>
    (scrape ??= (async () => {
      try {
        const [alive, backupCounts, controlCounts, status, counters] = await Promise.all([
          queues.aliveWorkers(),
          queues.call(() => queues.backup.getJobCounts(...JOB_STATES)),
          queues.call(() => queues.control.getJobCounts(...JOB_STATES)),
          queues.call(() => readStatus(queues)),
          queues.call(() => queues.redis.hgetall(redisKeys(queues.prefix).counters)),
        ]);
        redisUp.set(1);
        workers.set(alive.length);
        for (const state of JOB_STATES) {
          jobs.set({ queue: QUEUES.backup, state }, backupCounts[state] ?? 0);
          jobs.set({ queue: QUEUES.control, state }, controlCounts[state] ?? 0);
        }
        if (status.lastSuccess) {
          lastSuccess.set(Date.parse(status.lastSuccess.finishedAt) / 1000);
          lastSize.set(status.lastSuccess.size ?? 0);
          lastDuration.set(status.lastSuccess.durationMs / 1000);
        }
        if (status.lastFailure) lastFailure.set(Date.parse(status.lastFailure.finishedAt) / 1000);
        if (status.lastVerify) {
          lastVerifyTime.set(Date.parse(status.lastVerify.verifiedAt) / 1000);
          lastVerifyOk.set(status.lastVerify.ok ? 1 : 0);
        }
        retentionDeleted.set(Number(counters['retention:deleted'] ?? 0));
        leader.set(status.leader ? 1 : 0);
      } catch {
        redisUp.set(0);
      }
    })().finally(() => setImmediate(() => (scrape = undefined))));
  const redisUp = new Gauge({ name: 'chango_backup_redis_up', help: '1 when the api reaches Redis, else 0', registers: [registry], collect: refresh });
  const workers = new Gauge({ name: 'chango_backup_workers_alive', help: 'Workers with a fresh heartbeat', registers: [registry], collect: refresh });
  const jobs = new Gauge({ name: 'chango_backup_queue_jobs', help: 'Jobs in the queues by state', labelNames: ['queue', 'state'], registers: [registry], collect: refresh });
  const lastSuccess = new Gauge({ name: 'chango_backup_last_success_timestamp_seconds', help: 'When the newest successful backup finished (Unix time)', registers: [registry], collect: refresh });
  const lastFailure = new Gauge({ name: 'chango_backup_last_failure_timestamp_seconds', help: 'When the newest failed backup finished (Unix time)', registers: [registry], collect: refresh });
  const lastSize = new Gauge({ name: 'chango_backup_last_success_size_bytes', help: 'Size of the newest successful backup archive', registers: [registry], collect: refresh });
  const lastDuration = new Gauge({ name: 'chango_backup_last_success_duration_seconds', help: 'How long the newest successful backup took', registers: [registry], collect: refresh });
  const lastVerifyTime = new Gauge({ name: 'chango_backup_last_verify_timestamp_seconds', help: 'When the newest restore drill finished (Unix time)', registers: [registry], collect: refresh });
  const lastVerifyOk = new Gauge({ name: 'chango_backup_last_verify_success', help: '1 if the newest restore drill passed, 0 if it failed', registers: [registry], collect: refresh });
  const retentionDeleted = new Gauge({ name: 'chango_backup_retention_deleted_backups', help: 'Backups deleted by retention, as counted by the workers in Redis', registers: [registry], collect: refresh });
  const leader = new Gauge({ name: 'chango_backup_leader_present', help: '1 while a worker holds the leader lease', registers: [registry], collect: refresh });

  return registry;
}
