/**
 * Figures the workers record in Redis and every api replica reads at scrape
 * time (so two replicas never double count): names of the counters and the
 * buckets of the backup duration histogram, shared by both sides. The api
 * turns them into Prometheus metrics (apps/api/src/metrics.ts).
 */

/** Upper bounds (seconds) of the backup duration histogram: a small state takes seconds, a GiB about a minute. */
export const BACKUP_DURATION_BUCKETS_SECONDS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] as const;

export type RunResult = 'success' | 'failure' | 'skipped';

/** Fields of the counters hash (redisKeys().counters). */
export const COUNTER_FIELDS = {
  runs: (trigger: string, result: RunResult) => `runs:${trigger}:${result}`,
  verify: (ok: boolean) => `verify:${ok ? 'success' : 'failure'}`,
  /** Second copies by target (its destination label) and result. */
  copies: (destination: string, ok: boolean) => `copies:${ok ? 'success' : 'failure'}:${destination}`,
  retentionDeleted: 'retention:deleted',
  /** Not a counter: what the last retention pass kept because Object Lock still holds it (set, not incremented). */
  retentionKeptLocked: 'retention:kept-locked',
  /** Wrong bearer tokens presented to the api (missing tokens are not counted: they guess nothing). */
  authFailures: 'auth:failures',
  /** Requests the api answered 429 because their address presented too many wrong tokens. */
  authThrottled: 'auth:throttled',
} as const;

/** Fields of the duration histogram hash (redisKeys().durationHistogram): one count per bucket (not cumulative), sum, count. */
export const HISTOGRAM_FIELDS = {
  bucket: (upperBound: number | '+Inf') => `le:${upperBound}`,
  sum: 'sum',
  count: 'count',
} as const;

/** The bucket an observation falls in: the smallest upper bound not below it. */
export function histogramBucket(seconds: number): number | '+Inf' {
  return BACKUP_DURATION_BUCKETS_SECONDS.find((bound) => seconds <= bound) ?? '+Inf';
}
