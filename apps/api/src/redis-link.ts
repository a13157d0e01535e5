import { Redis, type RedisOptions } from 'ioredis';
import { Queue, QueueEvents } from 'bullmq';
import {
  QUEUES,
  describeRedis,
  redisConnectionOptions,
  type SharedSettings,
  type BackupQueueData,
  type BackupQueueResult,
  type ControlJobData,
  type ControlOutcome,
} from '@chango/contracts';
import { OutageLog, type Logger } from '@chango/telemetry';
import { HttpError } from './http-errors.js';

/** How long one Redis call may take before the api answers 503 rather than hang. */
const REDIS_CALL_MS = 3_000;

/**
 * The api's connections to Redis: the two BullMQ queues, their event streams
 * (for waiting on a job) and a plain client for the keys beside them. Every
 * call goes through `bounded`, so a Redis outage becomes a 503 with words,
 * never a hang. Routes do not use it directly: they go through BackupJobs.
 */
export class RedisLink {
  readonly backup: Queue<BackupQueueData, BackupQueueResult>;
  readonly control: Queue<ControlJobData, ControlOutcome<unknown>>;
  readonly backupEvents: QueueEvents;
  readonly controlEvents: QueueEvents;
  readonly redis: Redis;
  private readonly outage: OutageLog;

  /** Our Redis in words (the sentinels and master name, or the URL without its password), for messages. */
  readonly where: string;

  /** `settings`: REDIS_URL, or the Redis Sentinel settings (readSharedSettings). */
  constructor(
    settings: Pick<SharedSettings, 'redisUrl' | 'sentinel' | 'redisPassword'>,
    readonly prefix: string,
    log: Logger,
  ) {
    this.where = describeRedis(settings);
    this.outage = new OutageLog(log, { failed: 'Redis connection error', recovered: 'Redis answers again' });
    const base = redisConnectionOptions(settings);
    // BullMQ connects its queues itself; a call that Redis does not answer is cut short by bounded()'s timeout.
    const connection = { ...base, maxRetriesPerRequest: 1 };
    this.backup = new Queue(QUEUES.backup, { connection, prefix });
    this.control = new Queue(QUEUES.control, { connection, prefix });
    this.backupEvents = new QueueEvents(QUEUES.backup, { connection: { ...base }, prefix });
    this.controlEvents = new QueueEvents(QUEUES.control, { connection: { ...base }, prefix });
    this.redis = openRedis(base, { maxRetriesPerRequest: 1, enableAutoPipelining: true });
    const onError = (err: Error) => this.outage.failed(err);
    this.backup.on('error', onError);
    this.control.on('error', onError);
    this.backupEvents.on('error', onError);
    this.controlEvents.on('error', onError);
    this.redis.on('error', onError);
  }

  /** Runs a Redis-backed call; a Redis that does not answer becomes HttpError 503 within REDIS_CALL_MS. */
  async bounded<T>(work: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${REDIS_CALL_MS} ms`)), REDIS_CALL_MS);
    });
    try {
      const answer = await Promise.race([work(), timeout]);
      this.outage.succeeded();
      return answer;
    } catch (err) {
      if (err instanceof HttpError || !isRedisTrouble(err)) throw err;
      throw new HttpError(503, 'redis_unavailable', `${this.where} is not reachable (${(err as Error).message}); backups cannot be queued or looked up until it is back`);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.backup.close(), this.control.close(), this.backupEvents.close(), this.controlEvents.close()]);
    this.redis.disconnect();
  }
}

function isRedisTrouble(err: unknown): boolean {
  const message = (err as Error)?.message ?? '';
  const code = (err as NodeJS.ErrnoException)?.code ?? '';
  return (
    /no answer within|Stream isn't writeable|enableOfflineQueue|Connection is closed|MaxRetriesPerRequest|ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET/i.test(message) ||
    ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNRESET'].includes(code)
  );
}

/** A plain ioredis client from redisConnectionOptions plus this place's own options. */
export function openRedis(base: ReturnType<typeof redisConnectionOptions>, extra: RedisOptions): Redis {
  const { url, ...rest } = base;
  return url ? new Redis(url, { ...rest, ...extra }) : new Redis({ ...rest, ...extra });
}
