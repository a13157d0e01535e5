import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { Job, Queue, QueueEvents, Worker } from 'bullmq';
import { viewJob, type BackupQueueJob } from '../../apps/api/src/job-view.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';
import { deleteRedisPrefix, REDIS_URL } from '../../testkit/stack.js';

const prefix = `chango-test-${randomBytes(4).toString('hex')}`;
const connection = { url: REDIS_URL };
after(() => deleteRedisPrefix(prefix));

test('a job read while active and finished before its state is asked shows its result, not an empty one', async () => {
  const queue = new Queue('backup', { connection, prefix });
  const events = new QueueEvents('backup', { connection, prefix });
  await events.waitUntilReady();
  try {
    const added = await queue.add('backup', { trigger: 'manual', requestedBy: 'test' });
    // The api's view of a job is two reads; this is the first, taken before the job ran.
    const stale = (await Job.fromId(queue, added.id ?? '')) as BackupQueueJob;
    const worker = new Worker('backup', async () => ({ key: 'prod/chango-20261129T120000Z-x.tar.gz', sha256: 'ab'.repeat(32) }), { connection, prefix });
    try {
      await added.waitUntilFinished(events, SAFETY_NET_MS);
    } finally {
      await worker.close();
    }
    const view = await viewJob(stale, queue);
    assert.equal(view.state, 'completed');
    assert.deepEqual(view.result, { key: 'prod/chango-20261129T120000Z-x.tar.gz', sha256: 'ab'.repeat(32) });
    assert.ok(view.finishedAt, 'a finished job has a finish time');
  } finally {
    await events.close();
    await queue.close();
  }
});

test('a job that failed once and then completed shows its result and no failure; one that failed for good shows why', async () => {
  const queue = new Queue('backup', { connection, prefix });
  const events = new QueueEvents('backup', { connection, prefix });
  await events.waitUntilReady();
  let calls = 0;
  const worker = new Worker(
    'backup',
    async (job) => {
      calls += 1;
      if (job.data.requestedBy === 'always-fails' || job.attemptsMade === 0) throw new Error(`S3 did not answer (attempt ${job.attemptsMade + 1} of 2)`);
      return { key: 'prod/chango-20261129T120000Z-y.tar.gz', sha256: 'cd'.repeat(32) };
    },
    { connection, prefix },
  );
  try {
    const retried = await queue.add('backup', { trigger: 'api', requestedBy: 'test' }, { attempts: 2, backoff: { type: 'fixed', delay: 10 } });
    await retried.waitUntilFinished(events, SAFETY_NET_MS);
    const done = await viewJob((await Job.fromId(queue, retried.id ?? '')) as BackupQueueJob, queue);
    assert.equal(done.state, 'completed');
    assert.equal(done.attemptsMade, 2, 'the failed attempt is still counted');
    assert.equal(done.failure, null, 'a completed job does not show the failure of an attempt before it');

    const failing = await queue.add('backup', { trigger: 'api', requestedBy: 'always-fails' }, { attempts: 1 });
    await failing.waitUntilFinished(events, SAFETY_NET_MS).catch(() => undefined);
    const failed = await viewJob((await Job.fromId(queue, failing.id ?? '')) as BackupQueueJob, queue);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.failure?.message, 'S3 did not answer (attempt 1 of 2)');
    assert.equal(failed.result, null);
    assert.equal(calls, 3);
  } finally {
    await worker.close();
    await events.close();
    await queue.close();
  }
});
