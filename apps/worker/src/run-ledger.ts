import type { Redis } from 'ioredis';
import {
  redisKeys,
  type BackupResult,
  type BackupTrigger,
  type CopyRecord,
  type DestinationInventory,
  type RunRecord,
  type VerificationRecord,
} from '@chango/contracts';
import { COUNTER_FIELDS, HISTOGRAM_FIELDS, histogramBucket, type Logger } from '@chango/telemetry';

/** How long "this job's outcome is recorded" is remembered: far longer than any job lives in the queue. */
const RECORDED_MARKER_TTL_S = 30 * 24 * 3600;

// KEYS: marker, last-success, counters, histogram. ARGV: ttl, record, runs field, bucket field, sum field, count field, seconds.
const RECORD_SUCCESS_ONCE = `
if not redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('set', KEYS[2], ARGV[2])
redis.call('hincrby', KEYS[3], ARGV[3], 1)
redis.call('hincrby', KEYS[4], ARGV[4], 1)
redis.call('hincrbyfloat', KEYS[4], ARGV[5], ARGV[7])
redis.call('hincrby', KEYS[4], ARGV[6], 1)
return 1`;
// KEYS: marker, last-failure, counters. ARGV: ttl, record, runs field.
const RECORD_FAILURE_ONCE = `
if not redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('set', KEYS[2], ARGV[2])
redis.call('hincrby', KEYS[3], ARGV[3], 1)
return 1`;

// KEYS: marker, last-copy hash, counters. ARGV: ttl, hash field, record, counter field.
const RECORD_COPY_ONCE = `
if not redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('hset', KEYS[2], ARGV[2], ARGV[3])
redis.call('hincrby', KEYS[3], ARGV[4], 1)
return 1`;

/** Field of the last-copy hash: `success:<destination>` or `failure:<destination>`. */
export function lastCopyField(destination: string, ok: boolean): string {
  return `${ok ? 'success' : 'failure'}:${destination}`;
}

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

  /**
   * A backup that committed. Counted once per job, however often it is
   * recorded: a worker that takes over a job whose backup committed before the
   * crash records it again, and must not count it twice.
   */
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
    const keys = this.keys;
    await this.quietly('recording a success', () =>
      this.redis.eval(
        RECORD_SUCCESS_ONCE,
        4,
        keys.runRecorded(jobId, 'success'),
        keys.lastSuccess,
        keys.counters,
        keys.durationHistogram,
        RECORDED_MARKER_TTL_S,
        JSON.stringify(record),
        COUNTER_FIELDS.runs(result.trigger, 'success'),
        HISTOGRAM_FIELDS.bucket(histogramBucket(seconds)),
        HISTOGRAM_FIELDS.sum,
        HISTOGRAM_FIELDS.count,
        String(seconds),
      ),
    );
  }

  /** A run that failed for good (no attempt left, or a failure retrying cannot fix); counted once per job. */
  async recordFailure(record: RunRecord): Promise<void> {
    const keys = this.keys;
    await this.quietly('recording a failure', () =>
      this.redis.eval(
        RECORD_FAILURE_ONCE,
        3,
        keys.runRecorded(record.jobId, 'failure'),
        keys.lastFailure,
        keys.counters,
        RECORDED_MARKER_TTL_S,
        JSON.stringify(record),
        COUNTER_FIELDS.runs(record.trigger, 'failure'),
      ),
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

  /** A second copy that committed, or failed for good, at `destination`; counted once per job. */
  async recordCopy(destination: string, ok: boolean, record: CopyRecord): Promise<void> {
    const keys = this.keys;
    await this.quietly('recording a copy', () =>
      this.redis.eval(
        RECORD_COPY_ONCE,
        3,
        keys.runRecorded(record.jobId, ok ? 'success' : 'failure'),
        keys.lastCopy,
        keys.counters,
        RECORDED_MARKER_TTL_S,
        lastCopyField(destination, ok),
        JSON.stringify(record),
        COUNTER_FIELDS.copies(destination, ok),
      ),
    );
  }

  /** Forgets the last copies of targets other than `destination` (none: all): status shows the copy target that is configured. */
  async forgetCopyTargetsExcept(destination: string | null): Promise<void> {
    await this.quietly('forgetting old copy targets', async () => {
      const fields = await this.redis.hkeys(this.keys.lastCopy);
      const stale = fields.filter((field) => destination === null || (field !== lastCopyField(destination, true) && field !== lastCopyField(destination, false)));
      if (stale.length > 0) await this.redis.hdel(this.keys.lastCopy, ...stale);
    });
  }

  async recordRetentionDeletions(count: number): Promise<void> {
    if (count > 0) await this.quietly('counting retention deletions', () => this.redis.hincrby(this.keys.counters, COUNTER_FIELDS.retentionDeleted, count));
  }

  /** How many backups the last retention pass kept past the rule because S3 Object Lock still holds them (a gauge: the last pass's figure). */
  async recordRetentionKeptLocked(count: number): Promise<void> {
    await this.quietly('recording backups kept by Object Lock', () => this.redis.hset(this.keys.counters, COUNTER_FIELDS.retentionKeptLocked, count));
  }

  /** The destination's count as a walk completed it, with the retention applied (status shows it). */
  async recordInventory(inventory: DestinationInventory): Promise<void> {
    await this.quietly('recording the destination inventory', () => this.redis.set(this.keys.destinationInventory, JSON.stringify(inventory)));
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
