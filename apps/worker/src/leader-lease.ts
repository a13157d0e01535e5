import type { Redis } from 'ioredis';
import { parseLeaseValue, redisKeys, type LeaderInfo } from '@chango/contracts';
import { OutageLog, type Logger } from '@chango/telemetry';

/**
 * Leadership among the workers of a cluster (one per master host): a Redis
 * key with a TTL that the leader keeps renewing, holding a fencing token (an
 * epoch that grows by one each time the lease is taken). Only the leader takes
 * backup, verify and control jobs; before anything it does at the destination
 * that must not happen twice (committing a backup, deleting old ones) it checks
 * the lease is still its own (`confirm`), so a leader that hung and came back
 * after another took over cannot act on stale authority.
 *
 * Timing: the lease lives `leaseMs`; the leader renews it every leaseMs/3 and
 * the others try to take it as often. A leader that stops or hangs is replaced
 * within leaseMs + leaseMs/3 (20 s with the default 15 s lease). A leader that
 * cannot renew for a whole lease (Redis unreachable) steps down by itself.
 */

// KEYS[1] lease, KEYS[2] epoch counter; ARGV node id, lease ms, now ms, '1' to reclaim a lease held under our node id.
const ACQUIRE = `
local held = redis.call('get', KEYS[1])
if held then
  if ARGV[4] ~= '1' or string.match(held, '^%d+|(.*)|%d+$') ~= ARGV[1] then return false end
end
local epoch = redis.call('incr', KEYS[2])
local value = epoch .. '|' .. ARGV[1] .. '|' .. ARGV[3]
redis.call('set', KEYS[1], value, 'PX', ARGV[2])
return value`;
// KEYS[1] lease; ARGV our value, lease ms.
const RENEW = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0`;

export interface LeadershipHandlers {
  gained(lease: LeaderInfo): Promise<void>;
  lost(reason: string): Promise<void>;
  /** Called on every successful renewal while leader (the leader's periodic chores). */
  renewed?(): Promise<void>;
}

export class LeaderLease {
  private value: string | null = null;
  /** Until when our lease is surely valid: the send time of the last renewal that succeeded, plus the lease. */
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The round in flight, if any: a Redis call that does not answer must not pile rounds up behind it. */
  private inFlight: Promise<void> | undefined;
  private stopped = false;
  private readonly outage: OutageLog;
  private firstTry = true;
  private handlers: LeadershipHandlers = { gained: async () => undefined, lost: async () => undefined };

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly nodeId: string,
    private readonly leaseMs: number,
    private readonly log: Logger,
  ) {
    if (nodeId.includes('|')) throw new Error(`CHANGO_NODE_ID must not contain '|', got "${nodeId}"`);
    this.outage = new OutageLog(log, { failed: 'leader lease: Redis call failed', recovered: 'leader lease: Redis reachable again' });
  }

  get isLeader(): boolean {
    return this.value !== null && Date.now() < this.validUntil;
  }

  /** Tries to take the lease now and every leaseMs/3 from now on; `handlers` hear of every change. */
  async start(handlers: LeadershipHandlers): Promise<void> {
    this.handlers = handlers;
    await this.tick();
    this.timer = setInterval(() => {
      // Checked here, not only in a round: a round stuck on a Redis that does not answer must not keep us leading.
      if (this.value && Date.now() >= this.validUntil) void this.stepDown(`the lease could not be renewed within ${this.leaseMs} ms (Redis slow or unreachable)`);
      if (this.inFlight) return;
      this.inFlight = this.tick().finally(() => (this.inFlight = undefined));
    }, Math.max(200, Math.floor(this.leaseMs / 3)));
  }

  /**
   * True only if the lease in Redis is still ours right now: the fencing check
   * before an action that must not be taken by two workers.
   */
  async confirm(): Promise<boolean> {
    if (!this.value) return false;
    // Bounded by what is left of our lease: a Redis that does not answer before it runs out cannot confirm it.
    const expired = Symbol('expired');
    let timer: NodeJS.Timeout | undefined;
    const current = await Promise.race([
      this.redis.get(redisKeys(this.prefix).leader),
      new Promise<typeof expired>((resolve) => (timer = setTimeout(() => resolve(expired), Math.max(0, this.validUntil - Date.now())))),
    ]).finally(() => clearTimeout(timer));
    if (current === expired) return false;
    if (current === this.value) return true;
    await this.stepDown(`another worker holds the lease now (${parseLeaseValue(current)?.nodeId ?? 'none'})`);
    return false;
  }

  /** Gives the lease up (on a clean stop), so another worker takes over at once instead of after the TTL. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    // Bounded: with Redis away, a round in flight may never end, and stopping must not hang on it.
    await Promise.race([this.inFlight, new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
    if (this.value) {
      const ours = this.value;
      await this.stepDown('this worker is stopping');
      await this.redis.eval(RELEASE, 1, redisKeys(this.prefix).leader, ours).catch(() => undefined);
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const keys = redisKeys(this.prefix);
    const sentAt = Date.now();
    try {
      if (this.value) {
        if (sentAt >= this.validUntil) {
          // We did not renew in time (this process hung): someone else may lead by now.
          await this.stepDown(`the lease was not renewed within ${this.leaseMs} ms`);
          return;
        }
        const renewed = await this.redis.eval(RENEW, 1, keys.leader, this.value, String(this.leaseMs));
        if (renewed !== 1) {
          await this.stepDown('the lease was taken by another worker');
          return;
        }
        this.validUntil = sentAt + this.leaseMs;
        await this.handlers.renewed?.();
      } else {
        // On its first try, a worker restarted on the same host takes back the lease its previous process held
        // (that process is gone: the stores' lock let this one start), with a new epoch that fences the old one.
        const reclaim = this.firstTry ? '1' : '0';
        this.firstTry = false;
        const value = (await this.redis.eval(ACQUIRE, 2, keys.leader, keys.leaderEpoch, this.nodeId, String(this.leaseMs), String(sentAt), reclaim)) as string | null;
        if (!value) return;
        this.value = value;
        this.validUntil = sentAt + this.leaseMs;
        const lease = parseLeaseValue(value);
        if (!lease) throw new Error(`unreadable lease value ${value}`);
        this.log.info({ nodeId: this.nodeId, epoch: lease.epoch }, 'became leader: taking backup, verify and control jobs');
        await this.handlers.gained(lease);
      }
      this.outage.succeeded();
    } catch (err) {
      this.outage.failed(err);
      if (this.value && Date.now() >= this.validUntil) await this.stepDown('Redis could not be reached to renew the lease');
    }
  }

  private async stepDown(reason: string): Promise<void> {
    if (!this.value) return;
    const lease = parseLeaseValue(this.value);
    this.value = null;
    this.validUntil = 0;
    this.log.warn({ nodeId: this.nodeId, epoch: lease?.epoch, reason }, 'no longer leader: stopped taking jobs');
    await this.handlers.lost(reason).catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'stepping down failed'));
  }
}
