import { redisKeys } from '@chango/contracts';
import { COUNTER_FIELDS, type Logger } from '@chango/telemetry';
import type { RedisLink } from './redis-link.js';

export interface AuthThrottleSettings {
  /** Wrong tokens one client address may present per window; the next request is answered 429 until the window ends. */
  limit: number;
  /** The window, from the first wrong token: how long a locked-out address waits at most. */
  windowMs: number;
}

// KEYS: failures of the address, counters. ARGV: window ms, counter field. Returns [failures, ms left in the window].
const RECORD_FAILURE = `
local n = redis.call('incr', KEYS[1])
if n == 1 then redis.call('pexpire', KEYS[1], ARGV[1]) end
redis.call('hincrby', KEYS[2], ARGV[2], 1)
return {n, redis.call('pttl', KEYS[1])}`;

// KEYS: failures of the address. Returns [failures, ms left in the window].
const READ_FAILURES = `return {tonumber(redis.call('get', KEYS[1]) or '0'), redis.call('pttl', KEYS[1])}`;

/**
 * Counts wrong tokens per client address in Redis, so every api replica sees
 * the same count: after `limit` in a window, requests from that address that
 * present a token are answered 429 with Retry-After until the window ends —
 * before the token is checked, so a locked-out guesser learns nothing. Other
 * addresses are never slowed. A Redis that does not answer does not lock
 * anyone out (tokens are 256-bit: throttling is a second line).
 */
export class AuthThrottle {
  constructor(
    private readonly link: RedisLink,
    private readonly settings: AuthThrottleSettings,
    private readonly log: Logger,
  ) {}

  /** Milliseconds this address must still wait, or 0 when it may try. */
  async waitFor(address: string): Promise<number> {
    const [failures, left] = await this.run(READ_FAILURES, [this.key(address)], []);
    return failures >= this.settings.limit && left > 0 ? left : 0;
  }

  /** Counts a wrong token; returns how many this address presented in the window. */
  async recordFailure(address: string): Promise<number> {
    const keys = redisKeys(this.link.prefix);
    const [failures, left] = await this.run(RECORD_FAILURE, [this.key(address), keys.counters], [String(this.settings.windowMs), COUNTER_FIELDS.authFailures]);
    if (failures === this.settings.limit) {
      this.log.warn({ address, failures, retryAfterS: Math.ceil(left / 1000) }, 'authentication throttled: too many wrong tokens from this address');
    }
    return failures;
  }

  /** Counts a request refused with 429 (for the metrics). */
  async recordThrottled(): Promise<void> {
    await this.quietly(() => this.link.redis.hincrby(redisKeys(this.link.prefix).counters, COUNTER_FIELDS.authThrottled, 1), undefined);
  }

  private key(address: string): string {
    return `${redisKeys(this.link.prefix).authFailures}:${address}`;
  }

  /** A script whose answer is [count, ms left]; [0, 0] when Redis did not answer. */
  private async run(script: string, keys: string[], args: string[]): Promise<[number, number]> {
    return this.quietly(async () => {
      const [count, left] = (await this.link.redis.eval(script, keys.length, ...keys, ...args)) as [number, number];
      return [Number(count), Number(left)];
    }, [0, 0]);
  }

  /** A bounded Redis call; `otherwise` when Redis did not answer (throttling is a second line: never a reason to refuse). */
  private async quietly<T>(work: () => Promise<T>, otherwise: T): Promise<T> {
    try {
      return await this.link.bounded(work);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'authentication throttle: Redis did not answer; not throttling this request');
      return otherwise;
    }
  }
}
