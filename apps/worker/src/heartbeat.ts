import { Redis } from 'ioredis';
import { redisKeys, WORKER_HEARTBEAT_EVERY_MS, WORKER_HEARTBEAT_TTL_MS } from '@chango/contracts';
import { OutageLog, type Logger } from '@chango/telemetry';

/**
 * Tells the api this worker is alive (for /readyz) and publishes the public
 * key that secrets for the worker are sealed to. A Redis outage is logged
 * once, not per beat, and the beats resume by themselves.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private readonly outage: OutageLog;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly nodeId: string,
    private readonly transportPublicKey: string,
    log: Logger,
  ) {
    this.outage = new OutageLog(log, { failed: 'heartbeat failed: Redis not reachable', recovered: 'heartbeat restored: Redis reachable again' });
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), WORKER_HEARTBEAT_EVERY_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.zrem(redisKeys(this.prefix).workers, this.nodeId).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    const keys = redisKeys(this.prefix);
    const now = Date.now();
    try {
      await this.redis
        .multi()
        .zadd(keys.workers, now, this.nodeId)
        .zremrangebyscore(keys.workers, 0, now - 10 * WORKER_HEARTBEAT_TTL_MS)
        .set(keys.transportKey, this.transportPublicKey)
        .exec();
      this.outage.succeeded();
    } catch (err) {
      this.outage.failed(err);
    }
  }
}
