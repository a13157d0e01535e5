import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as Minio from 'minio';
import type { BackupResult, BackupStatus, SkippedBackup } from '@chango/contracts';
import type { JobView } from '../../apps/api/src/job-view.js';
import { SuiteScope, waitFor } from '../../testkit/fixtures.js';
import { backoffBound, FOLLOWER_SYNC_MS, jobLockBound, leaseBound, renewalMs, SAFETY_NET_MS, TIMER_SLACK_MS, withinLoad, withWork } from '../../testkit/liveness.js';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { deleteRedisPrefix, REDIS_URL, Stack } from '../../testkit/stack.js';
import { createTestBucket, minioClient, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';

const LEASE_MS = 3_000;
const JOB_LOCK_MS = 4_000;
const ATTEMPTS = 2;
const BACKOFF_MS = 200;
/** A leader that stops is replaced within the lease plus one renewal period (README; see leader-lease.ts): the feature under test. */
const TAKEOVER_BOUND_MS = leaseBound(LEASE_MS);
/** Waiting for a leadership change: the lease bound, with the load margin. */
const LEADERSHIP_WAIT_MS = withinLoad(TAKEOVER_BOUND_MS);
const EVERY_2_SECONDS = '*/2 * * * * *';
const TICK_MS = 2_000;
/**
 * A scheduled backup by a new leader: a dead or frozen leader's job is taken over once its lock ran out, retried after
 * the backoff, and the next tick is due within a period; the backup itself is work (withWork adds the safety net).
 */
const AFTER_TAKEOVER_BACKUP_MS = withWork(jobLockBound(JOB_LOCK_MS) + backoffBound(BACKOFF_MS, ATTEMPTS) + TICK_MS);


function isBackup(result: JobView['result']): result is BackupResult {
  return result !== null && !('skipped' in result);
}

describe('schedules on the leader: two master hosts, real Redis, real S3', () => {
  const scope = new SuiteScope();
  let rgw: RgwCluster;
  let stack: Stack;
  let s3: Minio.Client;
  let leaderId: string;

  before(async () => {
    rgw = await startRgw();
    scope.after(() => rgw.stop());
    s3 = minioClient(rgw);
    stack = await Stack.start(scope, {
      users: 4,
      components: 3000,
      env: {
        CHANGO_LEADER_LEASE_MS: String(LEASE_MS),
        CHANGO_VERIFY_SCHEDULED: 'false',
        CHANGO_JOB_LOCK_MS: String(JOB_LOCK_MS),
        CHANGO_BACKUP_ATTEMPTS: String(ATTEMPTS),
        CHANGO_BACKUP_BACKOFF_MS: String(BACKOFF_MS),
      },
    });
    leaderId = stack.env.CHANGO_NODE_ID as string;
    await stack.addWorker('node-b');
  });
  after(() => scope.run());

  const status = async () => (await stack.request<BackupStatus>('GET', '/admin/api/backup/status')).body;
  const jobs = async () => (await stack.request<{ jobs: JobView[] }>('GET', '/admin/api/backup/jobs?limit=500')).body.jobs;
  const completedBackups = async () => (await jobs()).filter((j) => j.kind === 'backup' && j.state === 'completed' && isBackup(j.result)).map((j) => j.result as BackupResult);
  const destination = (bucket: string, endpoint: string, extra: Record<string, unknown>) => ({
    endpoint,
    region: rgw.region,
    bucket,
    prefix: 'prod/',
    accessKey: rgw.accessKey,
    secretKey: rgw.secretKey,
    sse: 'none',
    ...extra,
  });

  test('exactly one worker leads; a bad cron or time zone is a 400 naming the field', async () => {
    const first = await status();
    assert.equal(first.leader?.nodeId, leaderId);
    assert.deepEqual([...first.workers].sort(), [leaderId, 'node-b'].sort());
    assert.equal(first.schedule, null, 'no schedule until one is configured (default off)');

    const bucket = await createTestBucket(rgw);
    const badCron = await stack.request<{ fields: { field: string; message: string }[] }>('PUT', '/admin/api/backup/config', {
      body: destination(bucket, rgw.endpoint, { schedule: '61 * * * *' }),
    });
    assert.equal(badCron.status, 400);
    assert.equal(badCron.body.fields[0]?.field, 'schedule');
    const badZone = await stack.request<{ fields: { field: string; message: string }[] }>('PUT', '/admin/api/backup/config', {
      body: destination(bucket, rgw.endpoint, { schedule: '0 3 * * *', timezone: 'Mars/Olympus_Mons' }),
    });
    assert.equal(badZone.status, 400);
    assert.equal(badZone.body.fields[0]?.field, 'timezone');
  });

  test('a schedule every 2 s makes one backup per tick on the leader only; a tick that finds one running is skipped', async (t) => {
    const bucket = await createTestBucket(rgw);
    // A slow link makes each backup outlast a tick interval.
    const slowEndpoint = (await FaultProxy.startIn(t, rgw.endpoint, { mode: 'slow', bytesPerSecond: 1_500_000 })).url;
    const put = await stack.request('PUT', '/admin/api/backup/config', { body: destination(bucket, slowEndpoint, { schedule: EVERY_2_SECONDS, timezone: 'Europe/Berlin' }) });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const scheduled = await status();
    assert.equal(scheduled.schedule?.cron, EVERY_2_SECONDS);
    assert.equal(scheduled.schedule?.timezone, 'Europe/Berlin');
    // At most one tick ahead (a quarter tick for rounding): not a stopwatch, the clock only moves on.
    assert.ok(scheduled.schedule?.nextRunAt && Date.parse(scheduled.schedule.nextRunAt) - Date.now() <= TICK_MS + TICK_MS / 4, `next run ${scheduled.schedule?.nextRunAt}`);

    // Four ticks at least (three backups, each outlasting a tick, and one skipped), then the backups' own work.
    await waitFor('three scheduled backups and a skipped tick', async () => {
      const rows = (await jobs()).filter((j) => j.kind === 'backup' && j.state === 'completed');
      const made = rows.filter((j) => isBackup(j.result)).length;
      const skipped = rows.filter((j) => j.result && 'skipped' in j.result).length;
      return made >= 3 && skipped >= 1 ? true : undefined;
    }, withWork(4 * TICK_MS), 500);
    const off = await stack.request('PUT', '/admin/api/backup/config', { body: destination(bucket, slowEndpoint, { schedule: null }) });
    assert.equal(off.status, 200);
    assert.equal((await status()).schedule, null, 'schedule: null removes the scheduler');
    // The backup in hand finishes: its own work.
    await waitFor('the queue to drain', async () => ((await jobs()).some((j) => j.state === 'active' || j.state === 'waiting') ? undefined : true), SAFETY_NET_MS, 300);

    const rows = (await jobs()).filter((j) => j.kind === 'backup');
    const made = rows.filter((j) => j.state === 'completed' && isBackup(j.result)).map((j) => j.result as BackupResult);
    const skipped = rows.filter((j) => j.state === 'completed' && j.result && 'skipped' in j.result).map((j) => j.result as SkippedBackup);
    t.diagnostic(`${made.length} backups made (${made.map((r) => `${r.size} B in ${r.durationMs} ms`).join(', ')}), ${skipped.length} ticks skipped`);
    assert.ok(made.every((r) => r.trigger === 'schedule' && r.nodeId === leaderId), `every backup made by the leader: ${made.map((r) => r.nodeId).join(',')}`);
    assert.ok(!stack.others.get('node-b')?.stdout.includes('backup committed'), 'the follower made no backup');

    // Never two at once: the runs' intervals do not overlap.
    const spans = made.map((r) => [Date.parse(r.startedAt), Date.parse(r.finishedAt)] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) assert.ok((spans[i]?.[0] ?? 0) >= (spans[i - 1]?.[1] ?? 0), `backups ${i - 1} and ${i} overlap`);
    // Each skipped tick is covered by a backup that was running when it fired (or started since).
    const keys = new Set(made.map((r) => r.key));
    for (const skip of skipped) {
      assert.ok(keys.has(skip.coveredBy.key), `skipped tick at ${skip.tickAt} covered by ${skip.coveredBy.key}`);
      const cover = made.find((r) => r.key === skip.coveredBy.key) as BackupResult;
      assert.ok(Date.parse(cover.finishedAt) >= Date.parse(skip.tickAt));
    }
    // One archive per backup made: no tick produced two.
    const archives: string[] = [];
    for await (const item of s3.listObjectsV2(bucket, 'prod/', true)) if (item.name?.endsWith('.tar.gz')) archives.push(item.name);
    assert.deepEqual(archives.sort(), [...keys].sort());
  });

  test('killing the leader hands the schedule to the other host within the lease bound', async (t) => {
    const bucket = await createTestBucket(rgw);
    const put = await stack.request('PUT', '/admin/api/backup/config', { body: destination(bucket, rgw.endpoint, { schedule: EVERY_2_SECONDS }) });
    assert.equal(put.status, 200);
    const before = await status();
    await waitFor('a scheduled backup by the leader', async () => ((await completedBackups()).some((r) => r.nodeId === leaderId && r.bucket === bucket) ? true : undefined), withWork(TICK_MS));
    // The follower holds the destination in its own metadata store, from the leader's save (adopted within a replica round).
    const nodeB = stack.others.get('node-b');
    await waitFor('node-b to adopt the destination', async () => (/backup destination updated from another master host/.test(nodeB?.stdout ?? '') ? true : undefined), withinLoad(FOLLOWER_SYNC_MS), 100);

    await stack.worker.stop('SIGKILL');
    const killedAt = Date.now();
    const next = await waitFor('node-b to lead', async () => {
      const now = await status();
      return now.leader?.nodeId === 'node-b' ? now : undefined;
    }, LEADERSHIP_WAIT_MS, 100);
    // Timed by node-b's own clock (the lease's since: when it took the lease), not by when this test's poll saw it.
    const takeoverMs = Date.parse(next.leader?.since ?? '') - killedAt;
    t.diagnostic(`node-b took over ${takeoverMs} ms after the leader was killed (lease ${LEASE_MS} ms; seen ${Date.now() - killedAt} ms after)`);
    assert.ok(takeoverMs <= TAKEOVER_BOUND_MS + TIMER_SLACK_MS, `took over in ${takeoverMs} ms (bound ${TAKEOVER_BOUND_MS} ms)`);
    assert.ok((next.leader?.epoch ?? 0) > (before.leader?.epoch ?? 0), 'a new fencing epoch');
    assert.equal(next.schedule?.cron, EVERY_2_SECONDS);

    await waitFor('a scheduled backup by node-b', async () => {
      const made = await completedBackups();
      return made.some((r) => r.nodeId === 'node-b' && Date.parse(r.startedAt) > killedAt) ? true : undefined;
    }, AFTER_TAKEOVER_BACKUP_MS);
  });

  test('an emptied Redis gets the schedule back from the metadata store when a worker restarts', async () => {
    const nodeB = stack.others.get('node-b');
    assert.ok(nodeB);
    await nodeB.stop('SIGTERM');
    assert.ok((await deleteRedisPrefix(stack.prefix)) > 0);
    const empty = await status();
    assert.equal(empty.schedule, null);
    assert.equal(empty.leader, null);

    const restartedAt = Date.now();
    await stack.addWorker('node-b');
    // Alone on an empty Redis node-b leads at once and sets the schedule; had that missed, its next renewal does.
    const back = await waitFor('the schedule to come back', async () => {
      const now = await status();
      return now.schedule ? now : undefined;
    }, LEADERSHIP_WAIT_MS);
    assert.equal(back.schedule?.cron, EVERY_2_SECONDS);
    assert.equal(back.leader?.nodeId, 'node-b');
    await waitFor('a scheduled backup after the restart', async () => ((await completedBackups()).some((r) => Date.parse(r.startedAt) > restartedAt) ? true : undefined), withWork(TICK_MS));
  });

  test('a leader that hangs is replaced, and steps down when it wakes up', async (t) => {
    const nodeB = stack.others.get('node-b');
    assert.ok(nodeB);
    await stack.addWorker('node-c');
    assert.equal((await status()).leader?.nodeId, 'node-b');

    nodeB.child.kill('SIGSTOP');
    t.after(() => nodeB.child.kill('SIGCONT'));
    const frozenAt = Date.now();
    const next = await waitFor('node-c to lead', async () => {
      const now = await status();
      return now.leader?.nodeId === 'node-c' ? now : undefined;
    }, LEADERSHIP_WAIT_MS, 100);
    // Timed by node-c's own clock (the lease's since), not by when this test's poll saw it.
    const takeoverMs = Date.parse(next.leader?.since ?? '') - frozenAt;
    t.diagnostic(`node-c took over ${takeoverMs} ms after the leader froze (seen ${Date.now() - frozenAt} ms after)`);
    assert.ok(takeoverMs <= TAKEOVER_BOUND_MS + TIMER_SLACK_MS, `took over in ${takeoverMs} ms (bound ${TAKEOVER_BOUND_MS} ms)`);

    nodeB.child.kill('SIGCONT');
    const wokeAt = Date.now();
    // Awake, node-b finds its lease overdue at its next check, due within one renewal period.
    await waitFor('node-b to step down', async () => (/no longer leader/.test(nodeB.stdout) ? true : undefined), withinLoad(renewalMs(LEASE_MS)), 100);
    await waitFor('two backups by node-c after node-b woke', async () => {
      const made = (await completedBackups()).filter((r) => Date.parse(r.startedAt) > wokeAt);
      return made.filter((r) => r.nodeId === 'node-c').length >= 2 ? made : undefined;
    }, withWork(jobLockBound(JOB_LOCK_MS) + backoffBound(BACKOFF_MS, ATTEMPTS) + 2 * TICK_MS));
    // Past its next lease check after waking (one renewal period), node-b started nothing that completed.
    const afterWake = (await completedBackups()).filter((r) => Date.parse(r.startedAt) > wokeAt + renewalMs(LEASE_MS));
    assert.ok(afterWake.every((r) => r.nodeId === 'node-c'), `after waking, node-b made none: ${afterWake.map((r) => r.nodeId).join(',')}`);
    assert.equal((await status()).leader?.nodeId, 'node-c');
  });
});

describe('a leader cut off from Redis', () => {
  test('steps down by itself once its lease runs out, and another worker leads', async (t) => {
    const proxy = await FaultProxy.startIn(t, REDIS_URL);
    // The first worker reaches Redis through a link that will go silent; the api and node-b reach it directly.
    const stack = await Stack.start(t, { users: 1, components: 5, env: { CHANGO_LEADER_LEASE_MS: String(LEASE_MS), REDIS_URL: proxy.url }, apiEnv: { REDIS_URL } });
    t.after(() => stack.worker.stop('SIGKILL'));
    await stack.addWorker('node-b', { REDIS_URL });
    const leaderNode = stack.env.CHANGO_NODE_ID as string;
    assert.equal((await stack.request<BackupStatus>('GET', '/admin/api/backup/status')).body.leader?.nodeId, leaderNode);

    proxy.set({ mode: 'blackhole' });
    const cutAt = Date.now();
    await waitFor('the cut-off leader to step down', async () => (/no longer leader/.test(stack.worker.stdout) ? true : undefined), LEADERSHIP_WAIT_MS, 100);
    // Timed by the worker's own log line, not by when this test's poll read it.
    const stepDownMs = (stack.worker.loggedAt('no longer leader') ?? Number.NaN) - cutAt;
    t.diagnostic(`stepped down ${stepDownMs} ms after the link went silent (lease ${LEASE_MS} ms; seen ${Date.now() - cutAt} ms after)`);
    assert.ok(stepDownMs <= TAKEOVER_BOUND_MS + TIMER_SLACK_MS, `stepped down after ${stepDownMs} ms (bound ${TAKEOVER_BOUND_MS} ms)`);
    assert.match(stack.worker.stdout, new RegExp(`could not be renewed within ${LEASE_MS} ms`));
    await waitFor('node-b to lead', async () => ((await stack.request<BackupStatus>('GET', '/admin/api/backup/status')).body.leader?.nodeId === 'node-b' ? true : undefined), LEADERSHIP_WAIT_MS, 100);
  });
});
