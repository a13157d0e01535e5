/**
 * Redis gone for REDIS_OUTAGE_MS mid-upload, then back on the same port — worker and api on a
 * Redis of the case's own (own-redis.ts), never the shared one:
 * - without persistence: stopped with SIGTERM, it comes back EMPTY (jobs, locks, lease, counters
 *   gone). The faulted job may then be unknown ("lost"): that is the outage, not a
 *   contradiction — but the service must run the next backup, and whatever it committed must
 *   restore;
 * - with persistence (`appendfsync always`): killed with SIGKILL, it comes back with every
 *   acknowledged write, so the faulted job must still be there and end.
 * The upload runs on a slowed link so it outlasts the outage (the fault lands 1 MiB in).
 */
import { aftermath } from '../aftermath.js';
import type { CaseContext, ChaosCase } from '../case.js';
import { World } from '../harness.js';
import { OwnRedis } from '../own-redis.js';
import { check } from '../record.js';
import { jobView } from '../service.js';
import { AIM, archiveTransferMs, phaseBoundMs, RATES, REDIS_OUTAGE_MS, STATE } from '../settings.js';
import { afterBytes, whenJobPhase } from '../triggers.js';


export function redisLossCases(): ChaosCase[] {
  return [
    {
      name: 'redis-down-no-persistence',
      kind: 'Redis down',
      summary: `own Redis (no persistence) stopped ${REDIS_OUTAGE_MS / 1000} s mid-upload, restarted empty`,
      quick: true,
      run: (ctx) => redisCase(ctx, false),
    },
    {
      name: 'redis-down-persistence',
      kind: 'Redis down',
      summary: `own Redis (AOF, fsync always) SIGKILLed ${REDIS_OUTAGE_MS / 1000} s mid-upload, restarted with its data`,
      run: (ctx) => redisCase(ctx, true),
    },
  ];
}

async function redisCase(ctx: CaseContext, persistent: boolean): Promise<void> {
  const { record } = ctx;
  const redis = await OwnRedis.start(ctx.scope, { persistent });
  const world = await World.create(ctx, { components: STATE.components, users: STATE.users, ownRedis: redis });
  const extraMs = archiveTransferMs(RATES.uploadThroughRedisOutage);
  world.s3Proxy.set({ mode: 'slow', bytesPerSecond: RATES.uploadThroughRedisOutage });
  const jobId = await world.startBackup();
  ctx.log(`backup ${jobId} started; aiming the Redis outage at upload`);
  // No tap here (the worker talks to this Redis directly, so the outage looks exactly like one): the api shows the phase, the proxy the bytes.
  if (!(await whenJobPhase(world.stack, jobId, 'upload', phaseBoundMs(extraMs)))) throw new Error('the backup never reached upload');
  if (!(await afterBytes(world.s3Proxy, 'up', AIM.uploadBytesRedis, phaseBoundMs(extraMs)))) throw new Error('the upload never started sending');
  const before = await jobView(world.stack, jobId);
  const phase = before && before !== 'unknown' ? before.progress?.phase : undefined;
  check(record, 'fault landed in upload', phase === 'upload' && before !== 'unknown' && before?.state === 'active', `the api showed ${before === 'unknown' ? 'no job' : `${before?.state} in ${phase}`}`);

  const signal = persistent ? 'SIGKILL' : 'SIGTERM';
  const at = Date.now();
  await redis.stop(signal);
  record.fault = `Redis (${persistent ? 'AOF fsync always' : 'no persistence'}) ${signal} ${Math.round(AIM.uploadBytesRedis / 1024 / 1024)} MiB into the upload, down ${REDIS_OUTAGE_MS / 1000} s`;
  await new Promise((resolve) => setTimeout(resolve, REDIS_OUTAGE_MS));
  await redis.restart();
  world.redisDataLost = !persistent;
  // The slowed link was for aiming only.
  world.s3Proxy.set({ mode: 'pass' });
  ctx.log('Redis back');
  await aftermath(world, record, { jobId, at, heldMs: REDIS_OUTAGE_MS });
}
