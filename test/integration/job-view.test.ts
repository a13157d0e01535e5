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
