import { Redis } from 'ioredis';
import { Queue, QueueEvents } from 'bullmq';
import {
  QUEUES,
  redisKeys,
  WORKER_HEARTBEAT_TTL_MS,
  type BackupJobData,
  type BackupOutcome,
  type VerificationRecord,
  type VerifyJobData,
  type ControlJobData,
  type ControlOutcome,
} from '@chango/contracts';
import type { Logger } from '@chango/telemetry';
import { HttpError } from './http-errors.js';

/** How long one Redis call may take before the api answers 503 rather than hang. */
const REDIS_CALL_MS = 3_000;

/**
 * The api's side of Redis: the two BullMQ queues, their event streams (for
 * waiting on a job) and a plain client for the worker registry. Every call is
 * bounded in time, so a Redis outage becomes a 503 with words, never a hang.
 */
export class JobQueues {
  readonly backup: Queue<BackupJobData | VerifyJobData, BackupOutcome | VerificationRecord>;
  readonly control: Queue<ControlJobData, ControlOutcome<unknown>>;
  readonly backupEvents: QueueEvents;
  readonly controlEvents: QueueEvents;
  readonly redis: Redis;
  private redisDownLogged = false;

  constructor(
    readonly redisUrl: string,
    readonly prefix: string,
    private readonly log: Logger,
  ) {
    // BullMQ connects its queues itself; a call that Redis does not answer is cut short by call()'s timeout.
    const connection = { url: redisUrl, maxRetriesPerRequest: 1 };
    this.backup = new Queue(QUEUES.backup, { connection, prefix });
    this.control = new Queue(QUEUES.control, { connection, prefix });
    this.backupEvents = new QueueEvents(QUEUES.backup, { connection: { url: redisUrl }, prefix });
    this.controlEvents = new QueueEvents(QUEUES.control, { connection: { url: redisUrl }, prefix });
    this.redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    const onError = (err: Error) => this.onRedisError(err);
    this.backup.on('error', onError);
    this.control.on('error', onError);
    this.backupEvents.on('error', onError);
    this.controlEvents.on('error', onError);
    this.redis.on('error', onError);
  }

  /** Runs a Redis-backed call; a Redis that does not answer becomes HttpError 503 within REDIS_CALL_MS. */
  async call<T>(work: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${REDIS_CALL_MS} ms`)), REDIS_CALL_MS);
    });
    try {
      return await Promise.race([work(), timeout]);
    } catch (err) {
      if (err instanceof HttpError || !isRedisTrouble(err)) throw err;
      throw new HttpError(503, 'redis_unavailable', `Redis at ${redactUrl(this.redisUrl)} is not reachable (${(err as Error).message}); backups cannot be queued or looked up until it is back`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Node ids of workers whose heartbeat is fresh. */
  async aliveWorkers(): Promise<string[]> {
    return this.call(() => this.redis.zrangebyscore(redisKeys(this.prefix).workers, Date.now() - WORKER_HEARTBEAT_TTL_MS, '+inf'));
  }

  /** The public key secrets for the worker are sealed to; 503 while no worker has published one. */
  async workerTransportKey(): Promise<string> {
    const key = await this.call(() => this.redis.get(redisKeys(this.prefix).transportKey));
    if (!key) throw new HttpError(503, 'no_worker', 'no chango worker has registered yet: start chango-worker on the master host');
    return key;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.backup.close(), this.control.close(), this.backupEvents.close(), this.controlEvents.close()]);
    this.redis.disconnect();
  }

  private onRedisError(err: Error): void {
    if (this.redisDownLogged) return;
    this.redisDownLogged = true;
    this.log.error({ err: err.message }, 'Redis connection error (logged once)');
    setTimeout(() => (this.redisDownLogged = false), 60_000).unref();
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

/** A Redis URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured Redis';
  }
}
