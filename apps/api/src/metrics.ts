import { collectDefaultMetrics, Registry, type Metric } from 'prom-client';
import {
  QUEUES,
  redisKeys,
  scheduleIntervalSeconds,
  type BackupStatus,
  type BackupTrigger,
} from '@chango/contracts';
import {
  BACKUP_DURATION_BUCKETS_SECONDS,
  COUNTER_FIELDS,
  HISTOGRAM_FIELDS,
  type RunResult,
} from '@chango/telemetry';
import type { RedisLink } from './redis-link.js';
import { readStatus } from './status.js';

const JOB_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed'] as const;
const TRIGGERS: BackupTrigger[] = ['api', 'schedule'];
const RESULTS: RunResult[] = ['success', 'failure', 'skipped'];

/** Everything /metrics shows about backups, read from Redis once per scrape. */
interface Snapshot {
  workers: number;
  queues: Record<string, Record<string, number>>;
  status: BackupStatus;
  counters: Record<string, string>;
  histogram: Record<string, string>;
  epoch: number;
}

interface Sample {
  value: number;
  labels?: Record<string, string>;
  metricName?: string;
}

type MetricType = 'counter' | 'gauge' | 'histogram';

/**
 * /metrics. Backup figures are not counted in this process: the workers record
 * them in Redis (run ledger) and every scrape reads them there, so any number
 * of api replicas report the same values and nothing is counted twice. Names
 * follow Prometheus conventions: `chango_backup_` prefix, base units
 * (`_seconds`, `_bytes`), counters end in `_total`, labels of low cardinality
 * (queue, state, trigger, result, node id of the few master hosts). No label
 * or value carries a secret.
 */
export function createMetrics(link: RedisLink): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters (promtool objects); the same figures stay, by type, in nodejs_active_{handles,requests,resources}.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);

  // One read of Redis per scrape, shared by every metric below.
  let pending: Promise<Snapshot | undefined> | undefined;
  const snapshot = (): Promise<Snapshot | undefined> =>
    (pending ??= readSnapshot(link)
      .catch(() => undefined)
      .finally(() => setImmediate(() => (pending = undefined))));

  /** A metric computed from the snapshot at each scrape; `whenRedisDown` is what it shows when Redis did not answer. */
  const shared = (name: string, help: string, type: MetricType, samples: (s: Snapshot) => Sample[], whenRedisDown: Sample[] = []) => {
    const get = async () => {
      const s = await snapshot();
      return { name, help, type, aggregator: 'sum', values: s ? samples(s) : whenRedisDown };
    };
    // prom-client renders any object with a name, help, type and get(): what a metric read from elsewhere needs.
    registry.registerMetric({ name, help, type, aggregator: 'sum', get } as unknown as Metric);
  };
  const seconds = (iso: string | undefined | null) => (iso ? Date.parse(iso) / 1000 : undefined);
  const only = (value: number | undefined): Sample[] => (value === undefined || Number.isNaN(value) ? [] : [{ value }]);

  shared('chango_backup_redis_up', '1 when this api reaches Redis, else 0', 'gauge', () => [{ value: 1 }], [{ value: 0 }]);
  shared('chango_backup_workers', 'Workers (one per master host) with a heartbeat in the last 15 s', 'gauge', (s) => [{ value: s.workers }]);
  shared('chango_backup_leader_present', '1 while a worker holds the leader lease, else 0', 'gauge', (s) => [{ value: s.status.leader ? 1 : 0 }]);
  shared('chango_backup_leader_info', 'The worker holding the leader lease (value always 1)', 'gauge', (s) => (s.status.leader ? [{ value: 1, labels: { node_id: s.status.leader.nodeId } }] : []));
  shared('chango_backup_leader_elections_total', 'Times the leader lease was taken (its fencing epoch)', 'counter', (s) => [{ value: s.epoch }]);
  shared('chango_backup_queue_jobs', 'Jobs in the queues by state (completed and failed: those still kept in the history)', 'gauge', (s) =>
    Object.entries(s.queues).flatMap(([queue, states]) => JOB_STATES.map((state) => ({ value: states[state] ?? 0, labels: { queue, state } }))),
  );
  shared('chango_backup_runs_total', 'Backup runs by trigger and result (skipped: a scheduled tick covered by a backup already running)', 'counter', (s) =>
    TRIGGERS.flatMap((trigger) => RESULTS.map((result) => ({ value: Number(s.counters[COUNTER_FIELDS.runs(trigger, result)] ?? 0), labels: { trigger, result } }))),
  );
  shared('chango_backup_duration_seconds', 'Duration of successful backups', 'histogram', (s) => histogramSamples('chango_backup_duration_seconds', s.histogram));
  shared('chango_backup_last_success_timestamp_seconds', 'When the newest successful backup finished (Unix time)', 'gauge', (s) => only(seconds(s.status.lastSuccess?.finishedAt)));
  shared('chango_backup_last_failure_timestamp_seconds', 'When the newest backup that failed for good finished (Unix time)', 'gauge', (s) => only(seconds(s.status.lastFailure?.finishedAt)));
  shared('chango_backup_last_success_duration_seconds', 'How long the newest successful backup took', 'gauge', (s) => only(s.status.lastSuccess ? s.status.lastSuccess.durationMs / 1000 : undefined));
  shared('chango_backup_last_archive_size_bytes', 'Size of the newest successful backup archive', 'gauge', (s) => only(s.status.lastSuccess?.size ?? undefined));
  shared('chango_backup_last_verify_timestamp_seconds', 'When the newest restore drill finished (Unix time)', 'gauge', (s) => only(seconds(s.status.lastVerify?.verifiedAt)));
  shared('chango_backup_last_verify_success', '1 if the newest restore drill passed, 0 if the backup did not restore', 'gauge', (s) => only(s.status.lastVerify ? (s.status.lastVerify.ok ? 1 : 0) : undefined));
  shared(
    'chango_backup_last_verify_restored',
    '1 if the newest drill restored the backup in full, 0 if it could only check the stored bytes against the sidecar (an archive encrypted to offline recipients, and no identity on the worker)',
    'gauge',
    (s) => only(s.status.lastVerify ? (s.status.lastVerify.kind === 'checksum' ? 0 : 1) : undefined),
  );
  shared('chango_backup_verify_runs_total', 'Restore drills by result', 'counter', (s) =>
    [true, false].map((ok) => ({ value: Number(s.counters[COUNTER_FIELDS.verify(ok)] ?? 0), labels: { result: ok ? 'success' : 'failure' } })),
  );
  shared('chango_backup_copy_last_success_timestamp_seconds', 'When the newest second copy committed at each copy target (Unix time)', 'gauge', (s) =>
    s.status.lastCopy.flatMap((target) => only(seconds(target.lastSuccess?.finishedAt)).map((sample) => ({ ...sample, labels: { destination: target.destination } }))),
  );
  shared('chango_backup_copy_last_failure_timestamp_seconds', 'When the newest second copy that failed for good ended, per copy target (Unix time)', 'gauge', (s) =>
    s.status.lastCopy.flatMap((target) => only(seconds(target.lastFailure?.finishedAt)).map((sample) => ({ ...sample, labels: { destination: target.destination } }))),
  );
  shared('chango_backup_copy_runs_total', 'Second copies by copy target and result', 'counter', (s) =>
    Object.entries(s.counters).flatMap(([field, value]) => {
      const match = /^copies:(success|failure):(.+)$/.exec(field);
      return match?.[1] && match[2] ? [{ value: Number(value), labels: { destination: match[2], result: match[1] } }] : [];
    }),
  );
  shared('chango_backup_retention_deleted_total', 'Backups deleted by retention', 'counter', (s) => [{ value: Number(s.counters[COUNTER_FIELDS.retentionDeleted] ?? 0) }]);
  shared('chango_backup_retention_kept_locked', 'Backups the last retention pass kept past the rule because S3 Object Lock still holds them', 'gauge', (s) => [
    { value: Number(s.counters[COUNTER_FIELDS.retentionKeptLocked] ?? 0) },
  ]);
  shared('chango_backup_auth_failures_total', 'Wrong bearer tokens presented to the api (all replicas; requests without a token are not counted)', 'counter', (s) => [{ value: Number(s.counters[COUNTER_FIELDS.authFailures] ?? 0) }]);
  shared('chango_backup_auth_throttled_total', 'Requests answered 429 because their address presented too many wrong tokens', 'counter', (s) => [{ value: Number(s.counters[COUNTER_FIELDS.authThrottled] ?? 0) }]);
  shared('chango_backup_destination_backups', 'Archives at the destination as the leader last counted them: committed (backups) and incomplete (never committed)', 'gauge', (s) =>
    s.status.destination
      ? [
          { value: s.status.destination.committed, labels: { state: 'committed' } },
          { value: s.status.destination.archives - s.status.destination.committed, labels: { state: 'incomplete' } },
        ]
      : [],
  );
  shared('chango_backup_destination_bytes', 'Bytes of the archives at the destination as last counted', 'gauge', (s) => only(s.status.destination?.bytes));
  shared('chango_backup_schedule_interval_seconds', 'Seconds between two scheduled backups (absent while no schedule is set)', 'gauge', (s) =>
    only(s.status.schedule ? scheduleIntervalSeconds(s.status.schedule.cron, s.status.schedule.timezone) : undefined),
  );
  shared('chango_backup_schedule_next_run_timestamp_seconds', 'When the next scheduled backup is due (Unix time)', 'gauge', (s) => only(seconds(s.status.schedule?.nextRunAt)));

  return registry;
}

async function readSnapshot(link: RedisLink): Promise<Snapshot> {
  const keys = redisKeys(link.prefix);
  const [backup, control, status, counters, histogram, epoch] = await Promise.all([
    link.bounded(() => link.backup.getJobCounts(...JOB_STATES)),
    link.bounded(() => link.control.getJobCounts(...JOB_STATES)),
    link.bounded(() => readStatus(link)),
    link.bounded(() => link.redis.hgetall(keys.counters)),
    link.bounded(() => link.redis.hgetall(keys.durationHistogram)),
    link.bounded(() => link.redis.get(keys.leaderEpoch)),
  ]);
  return { workers: status.workers.length, queues: { [QUEUES.backup]: backup, [QUEUES.control]: control }, status, counters, histogram, epoch: Number(epoch ?? 0) };
}

/** Prometheus histogram samples (cumulative `_bucket`s, `_sum`, `_count`) from the per-bucket counts the workers keep. */
function histogramSamples(name: string, hash: Record<string, string>): Sample[] {
  const samples: Sample[] = [];
  let cumulative = 0;
  for (const bound of BACKUP_DURATION_BUCKETS_SECONDS) {
    cumulative += Number(hash[HISTOGRAM_FIELDS.bucket(bound)] ?? 0);
    samples.push({ metricName: `${name}_bucket`, labels: { le: String(bound) }, value: cumulative });
  }
  const count = Number(hash[HISTOGRAM_FIELDS.count] ?? 0);
  samples.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: count });
  samples.push({ metricName: `${name}_sum`, value: Number(hash[HISTOGRAM_FIELDS.sum] ?? 0) });
  samples.push({ metricName: `${name}_count`, value: count });
  return samples;
}
