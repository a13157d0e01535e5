import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BackupResult, BackupStatus } from '@chango/contracts';
import type { JobView } from '../../apps/api/src/job-view.js';
import { SuiteScope, waitFor } from '../../testkit/fixtures.js';
import { backoffBound, jobLockBound, leaseBound, withinLoad, withWork } from '../../testkit/liveness.js';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { createTestBucket, minioClient, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';
import { RedisSentinelSet } from '../../testkit/redis-sentinel.js';
import { Stack } from '../../testkit/stack.js';

const LEASE_MS = 3_000;
const JOB_LOCK_MS = 4_000;
const ATTEMPTS = 2;
const BACKOFF_MS = 200;
const DOWN_AFTER_MS = 1_000;
const FAILOVER_TIMEOUT_MS = 3_000;
const EVERY_2_SECONDS = '*/2 * * * * *';
const TICK_MS = 2_000;

/** The distinct messages of the warn-or-worse JSON log lines from `since` on, with how often each came. */
function logSummary(stdout: string, since: number): string {
  const counts = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    try {
      const entry = JSON.parse(line) as { level?: number; time?: number; msg?: string };
      if ((entry.level ?? 0) >= 40 && (entry.time ?? 0) >= since && entry.msg) counts.set(entry.msg, (counts.get(entry.msg) ?? 0) + 1);
    } catch {
      // not a JSON log line
    }
  }
  return [...counts].map(([msg, n]) => `"${msg}" ×${n}`).join(', ') || 'nothing';
}



describe('Redis through Sentinel: the master dies, the replica is promoted, backups go on', () => {
  const scope = new SuiteScope();
  let rgw: RgwCluster;
  let redis: RedisSentinelSet;
  let stack: Stack;

  before(async () => {
    rgw = await startRgw();
    scope.after(() => rgw.stop());
    redis = await RedisSentinelSet.start(scope, { downAfterMs: DOWN_AFTER_MS, failoverTimeoutMs: FAILOVER_TIMEOUT_MS });
    stack = await Stack.start(scope, {
      users: 4,
      components: 40,
      sharedRedis: false,
      env: {
        ...redis.env(),
        // Nothing listens there: with REDIS_SENTINELS set, REDIS_URL is not used.
        REDIS_URL: 'redis://127.0.0.1:1',
        CHANGO_LEADER_LEASE_MS: String(LEASE_MS),
        CHANGO_JOB_LOCK_MS: String(JOB_LOCK_MS),
        CHANGO_BACKUP_ATTEMPTS: String(ATTEMPTS),
        CHANGO_BACKUP_BACKOFF_MS: String(BACKOFF_MS),
        CHANGO_VERIFY_SCHEDULED: 'false',
      },
    });
  });
  after(() => scope.run());

  const status = async () => {
    const answer = await stack.request<BackupStatus>('GET', '/admin/api/backup/status', { timeoutMs: 10_000 });
    return answer.status === 200 ? answer.body : undefined;
  };
  const completedBackups = async () => {
    const answer = await stack.request<{ jobs: JobView[] }>('GET', '/admin/api/backup/jobs?limit=500', { timeoutMs: 10_000 });
    if (answer.status !== 200) return [];
    return answer.body.jobs.filter((j) => j.kind === 'backup' && j.state === 'completed' && j.result && !('skipped' in j.result)).map((j) => j.result as BackupResult);
  };

  test('the master is SIGKILLed: the lease is held again, the api answers, the next scheduled backup succeeds', async (t) => {
    const nodeId = stack.env.CHANGO_NODE_ID as string;
    assert.match(stack.worker.stdout, new RegExp(`Redis master \\\\"${redis.masterName}\\\\" via sentinels ${redis.env().REDIS_SENTINELS}`), 'the worker says where its Redis is');
    const first = await waitFor('the worker to lead', async () => ((await status())?.leader?.nodeId === nodeId ? await status() : undefined), withinLoad(leaseBound(LEASE_MS)));

    const bucket = await createTestBucket(rgw);
    const put = await stack.request('PUT', '/admin/api/backup/config', {
      body: { endpoint: rgw.endpoint, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey, sse: 'none', schedule: EVERY_2_SECONDS },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    await waitFor('a scheduled backup before the kill', async () => ((await completedBackups()).some((r) => r.trigger === 'schedule') ? true : undefined), withWork(TICK_MS));

    assert.equal(await redis.masterPortSeenBy(), redis.firstMasterPort);
    redis.kill(redis.firstMasterPort);
    const killedAt = Date.now();

    // The sentinels call the master down after down-after-milliseconds and promote the replica.
    await waitFor('the sentinels to promote the replica', async () => {
      for (const i of [0, 1, 2]) if ((await redis.masterPortSeenBy(i)) !== redis.firstReplicaPort) return undefined;
      return (await redis.roleOf(redis.firstReplicaPort)) === 'master' ? true : undefined;
    }, withinLoad(redis.failoverBound()), 100);
    const promotedMs = Date.now() - killedAt;

    // The leader lease is held again (renewed on the new master, or retaken once it ran out).
    const leaseWait = withinLoad(redis.failoverBound() + leaseBound(LEASE_MS));
    const again = await waitFor('the worker to hold the leader lease again', async () => {
      const now = await status();
      return now?.leader?.nodeId === nodeId ? now : undefined;
    }, leaseWait, 100);
    assert.ok((again.leader?.epoch ?? 0) >= (first?.leader?.epoch ?? 0));
    assert.equal(again.schedule?.cron, EVERY_2_SECONDS, 'the schedule is still set');
    // The api answers, and sees the worker alive.
    const ready = await waitFor('the api to be ready', async () => {
      const answer = await stack.request<{ status: string; workers: string[] }>('GET', '/readyz', { token: null, timeoutMs: 10_000 });
      return answer.status === 200 ? answer.body : undefined;
    }, leaseWait, 100);
    assert.deepEqual(ready.workers, [nodeId]);

    // The next scheduled backup after the kill succeeds: a job running at the kill may be taken over once its lock ran out.
    const next = await waitFor('a scheduled backup started after the kill to succeed', async () => {
      const made = (await completedBackups()).filter((r) => r.trigger === 'schedule' && Date.parse(r.startedAt) > killedAt);
      return made.sort((a, b) => Date.parse(a.finishedAt) - Date.parse(b.finishedAt))[0];
    }, withWork(redis.failoverBound() + leaseBound(LEASE_MS) + jobLockBound(JOB_LOCK_MS) + backoffBound(BACKOFF_MS, ATTEMPTS) + TICK_MS), 200);
    const killToBackupMs = Date.parse(next.finishedAt) - killedAt;
    const line =
      `Redis master SIGKILLed: replica promoted (seen by all three sentinels) ${promotedMs} ms after; ` +
      `lease held again (epoch ${first?.leader?.epoch} -> ${again.leader?.epoch}); next scheduled backup ${next.key} finished ${killToBackupMs} ms after the kill ` +
      `(started ${Date.parse(next.startedAt) - killedAt} ms after, took ${next.durationMs} ms)`;
    t.diagnostic(line);
    console.log(line);
    // What an operator saw in the logs meanwhile (README "Redis with Sentinel"): each distinct message, counted.
    for (const [name, proc] of [['worker', stack.worker], ['api', stack.api]] as const) t.diagnostic(`${name} logged after the kill: ${logSummary(proc.stdout, killedAt)}`);

    // No password in anything the processes printed or the api answered.
    const transcript = stack.transcript();
    assert.ok(!transcript.includes(redis.redisPassword), 'the Redis password never shows');
    assert.ok(!transcript.includes(redis.sentinelPassword), 'the sentinel password never shows');
  });

  test('the master dies in the middle of an upload: the backup ends committed once, never half-written', async (t) => {
    const nodeId = stack.env.CHANGO_NODE_ID as string;
    // The killed master comes back (as a node would): the sentinels make it a replica of the promoted one.
    await redis.restart(redis.firstMasterPort);
    const master = await redis.masterPortSeenBy();
    assert.equal(master, redis.firstReplicaPort);

    // A link slow enough that the upload outlasts a failover (the archive is small: this state has 40 components).
    const size = (await completedBackups())[0]?.size ?? 0;
    assert.ok(size > 0);
    const bytesPerSecond = Math.max(1_000, Math.floor(size / (redis.failoverBound() / 1_000 + 4)));
    const bucket = await createTestBucket(rgw);
    const slow = await FaultProxy.startIn(t, rgw.endpoint, { mode: 'slow', bytesPerSecond });
    const put = await stack.request('PUT', '/admin/api/backup/config', {
      body: { endpoint: slow.url, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey, sse: 'none', schedule: null },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const before = await waitFor('the status', status, withinLoad(leaseBound(LEASE_MS)));
    // The scheduled backup in hand when the schedule was removed finishes first: its own work.
    await waitFor('the queue to drain', async () => {
      const answer = await stack.request<{ jobs: JobView[] }>('GET', '/admin/api/backup/jobs?limit=500', { timeoutMs: 10_000 });
      return answer.status === 200 && !answer.body.jobs.some((j) => ['active', 'waiting'].includes(j.state)) ? true : undefined;
    }, withWork(TICK_MS), 200);
    const started = await stack.request<{ jobId: string }>('POST', '/admin/api/backup/run?wait=false');
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const jobPath = `/admin/api/backup/jobs/${started.body.jobId}`;
    await waitFor('the backup to be uploading', async () => {
      const job = await stack.request<JobView>('GET', jobPath, { timeoutMs: 10_000 });
      assert.notEqual(job.body.state, 'completed', 'the backup finished before the master could be killed: make the link slower');
      return job.body.progress?.phase === 'upload' ? true : undefined;
    }, withWork(0), 50);
    // The job's record is on the replica before the kill: a failover loses the writes that had not reached it
    // (README "Redis with Sentinel"), and this test is about a job that survives in Redis, not one Redis lost.
    await redis.replicated(master);
    redis.kill(master);
    const killedAt = Date.now();

    await waitFor('the sentinels to promote the restarted replica', async () => {
      for (const i of [0, 1, 2]) if ((await redis.masterPortSeenBy(i)) !== redis.firstMasterPort) return undefined;
      return (await redis.roleOf(redis.firstMasterPort)) === 'master' ? true : undefined;
    }, withinLoad(redis.failoverBound()), 100);
    // The job ends: done in one go, or retried after a fenced commit or a lost lock (README "Redis with Sentinel").
    const answer = await waitFor('the backup to end', async () => {
      const job = await stack.request<JobView>('GET', jobPath, { timeoutMs: 10_000 });
      if (job.status === 404) return job; // the job is gone: no use waiting for it
      return job.status === 200 && (job.body.state === 'completed' || job.body.state === 'failed') ? job : undefined;
    }, withWork(redis.failoverBound() + leaseBound(LEASE_MS) + jobLockBound(JOB_LOCK_MS) + backoffBound(BACKOFF_MS, ATTEMPTS)), 200);
    assert.equal(answer.status, 200, `the job's record survived the failover: ${JSON.stringify(answer.body)}`);
    const ended = answer.body;
    const after = await waitFor('the worker to lead', async () => ((await status())?.leader?.nodeId === nodeId ? await status() : undefined), withinLoad(leaseBound(LEASE_MS)));
    const line =
      `master SIGKILLed during an upload (${size} B at ${bytesPerSecond} B/s): the job ${ended.state} after ${ended.attemptsMade ?? '?'} attempt(s) ` +
      `${Date.now() - killedAt} ms after the kill; lease epoch ${before.leader?.epoch} -> ${after.leader?.epoch}` +
      `${ended.failure ? `; failure: ${ended.failure.message}` : ''}; worker logged: ${logSummary(stack.worker.stdout, killedAt)}`;
    t.diagnostic(line);
    console.log(line);
    assert.equal(ended.state, 'completed', `the backup completes: ${ended.failure?.message ?? ''}`);

    // At the destination: committed backups only (each archive with its sidecar), no dangling upload.
    const s3 = minioClient(rgw);
    const names: string[] = [];
    for await (const item of s3.listObjectsV2(bucket, '', true)) if (item.name) names.push(item.name);
    const archives = names.filter((n) => n.endsWith('.tar.gz'));
    assert.ok(archives.length >= 1 && archives.length <= 2, `one backup, or two of the same state at worst: ${names.join(', ')}`);
    for (const archive of archives) assert.ok(names.includes(`${archive}.sha256`), `${archive} is committed (has its sidecar)`);
    const incomplete: string[] = [];
    for await (const upload of s3.listIncompleteUploads(bucket, '', true)) incomplete.push(upload.key);
    assert.deepEqual(incomplete, [], 'no dangling multipart upload');
  });
});
