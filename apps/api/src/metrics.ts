import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { QUEUES } from '@chango/contracts';
import type { JobQueues } from './queues.js';

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
        const [alive, backupCounts, controlCounts, [completed], [failed]] = await Promise.all([
          queues.aliveWorkers(),
          queues.call(() => queues.backup.getJobCounts(...JOB_STATES)),
          queues.call(() => queues.control.getJobCounts(...JOB_STATES)),
          queues.call(() => queues.backup.getJobs(['completed'], 0, 0)),
          queues.call(() => queues.backup.getJobs(['failed'], 0, 0)),
        ]);
        redisUp.set(1);
        workers.set(alive.length);
        for (const state of JOB_STATES) {
          jobs.set({ queue: QUEUES.backup, state }, backupCounts[state] ?? 0);
          jobs.set({ queue: QUEUES.control, state }, controlCounts[state] ?? 0);
        }
        if (completed?.finishedOn) {
          lastSuccess.set(completed.finishedOn / 1000);
          lastSize.set(completed.returnvalue?.size ?? 0);
          lastDuration.set((completed.returnvalue?.durationMs ?? 0) / 1000);
        }
        if (failed?.finishedOn) lastFailure.set(failed.finishedOn / 1000);
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

  return registry;
}
