import type { Redis } from 'ioredis';
import {
  COUNTER_FIELDS,
  HISTOGRAM_FIELDS,
  histogramBucket,
  redisKeys,
  type BackupResult,
  type BackupTrigger,
  type RunRecord,
  type VerificationRecord,
} from '@chango/contracts';
import type { Logger } from '@chango/telemetry';

/**
 * What the workers remember of runs, in Redis beside the queues: the last
 * success and last failure (for status and the "tick already covered" check),
 * the last drill, and counters. Kept in shared state, written once per event
 * by the worker that saw it, so any number of api replicas read the same
 * numbers (no per-process counting). Losing it (an emptied Redis) loses
 * history, never a backup: S3 holds the backups and their drill records.
 */
export class RunLedger {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  private get keys() {
    return redisKeys(this.prefix);
  }

  async recordSuccess(jobId: string, result: BackupResult): Promise<void> {
    const record: RunRecord = {
      jobId,
      trigger: result.trigger,
      nodeId: result.nodeId,
      startedAt: result.startedAt,
      finishedAt: result.finishedAt,
      key: result.key,
      sha256: result.sha256,
      size: result.size,
      durationMs: result.durationMs,
      error: null,
    };
    const seconds = result.durationMs / 1000;
    await this.quietly('recording a success', () =>
      this.redis
        .multi()
        .set(this.keys.lastSuccess, JSON.stringify(record))
        .hincrby(this.keys.counters, COUNTER_FIELDS.runs(result.trigger, 'success'), 1)
        .hincrby(this.keys.durationHistogram, HISTOGRAM_FIELDS.bucket(histogramBucket(seconds)), 1)
        .hincrbyfloat(this.keys.durationHistogram, HISTOGRAM_FIELDS.sum, seconds)
        .hincrby(this.keys.durationHistogram, HISTOGRAM_FIELDS.count, 1)
        .exec(),
    );
  }

  /** A run that failed for good (no attempt left, or a failure retrying cannot fix). */
  async recordFailure(record: RunRecord): Promise<void> {
    await this.quietly('recording a failure', () =>
      this.redis.multi().set(this.keys.lastFailure, JSON.stringify(record)).hincrby(this.keys.counters, COUNTER_FIELDS.runs(record.trigger, 'failure'), 1).exec(),
    );
  }

  async recordSkip(trigger: BackupTrigger): Promise<void> {
    await this.quietly('recording a skipped tick', () => this.redis.hincrby(this.keys.counters, COUNTER_FIELDS.runs(trigger, 'skipped'), 1));
  }

  async recordVerification(record: VerificationRecord): Promise<void> {
    await this.quietly('recording a drill', () =>
      this.redis.multi().set(this.keys.lastVerify, JSON.stringify(record)).hincrby(this.keys.counters, COUNTER_FIELDS.verify(record.ok), 1).exec(),
    );
  }

  async recordRetentionDeletions(count: number): Promise<void> {
    if (count > 0) await this.quietly('counting retention deletions', () => this.redis.hincrby(this.keys.counters, COUNTER_FIELDS.retentionDeleted, count));
  }

  async lastSuccess(): Promise<RunRecord | null> {
    const raw = await this.redis.get(this.keys.lastSuccess);
    return raw ? (JSON.parse(raw) as RunRecord) : null;
  }

  /** History is best effort: a Redis hiccup here must not fail a backup that is already safe in S3. */
  private async quietly(what: string, work: () => Promise<unknown>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, `run ledger: ${what} failed`);
    }
  }
}
