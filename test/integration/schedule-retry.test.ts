import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SkippedBackup } from '@chango/contracts';
import type { JobView } from '../../apps/api/src/job-view.js';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { createTestBucket, startRgw } from '../../testkit/local-rgw.js';
import { waitFor } from '../../testkit/fixtures.js';
import { backoffBound, withinLoad, withWork } from '../../testkit/liveness.js';
import { Stack } from '../../testkit/stack.js';

const ATTEMPTS = 3;
const BACKOFF_MS = 1_500;
const EVERY_SECOND = '* * * * * *';
const TICK_MS = 1_000;


const isSkip = (j: JobView): boolean => j.result !== null && 'skipped' in j.result;

/*
 * Ticks that fire while a scheduled backup waits for its next attempt must not run attempts of
 * their own: they would pile up faster than they fail against a destination that refuses, and
 * push the first backup's retries ever later (found by the chaos case
 * s3-blackhole-scheduled-defaults with a schedule shorter than the retries).
 */
test('ticks that fire while a backup is being retried are skipped as covered by it; once it failed for good, the next tick backs up', async (t) => {
  const rgw = await startRgw();
  t.after(() => rgw.stop());
  const bucket = await createTestBucket(rgw);
  const proxy = await FaultProxy.startIn(t, rgw.endpoint);
  const stack = await Stack.start(t, {
    users: 2,
    components: 300,
    env: { CHANGO_BACKUP_ATTEMPTS: String(ATTEMPTS), CHANGO_BACKUP_BACKOFF_MS: String(BACKOFF_MS), CHANGO_VERIFY_SCHEDULED: 'false' },
  });
  const jobs = async () => (await stack.request<{ jobs: JobView[] }>('GET', '/admin/api/backup/jobs?limit=500')).body.jobs.filter((j) => j.kind === 'backup');
  const config = (schedule: string | null) => ({ endpoint: proxy.url, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey, sse: 'none', schedule });

  // Saved through a healthy link (the save checks the bucket), then every connection is reset: each attempt fails at once, transiently.
  assert.equal((await stack.request('PUT', '/admin/api/backup/config', { body: config(null) })).status, 200);
  proxy.set({ mode: 'cut' });
  assert.equal((await stack.request('PUT', '/admin/api/backup/config', { body: config(EVERY_SECOND) })).status, 200);

  const first = await waitFor(
    'the first scheduled backup to fail for good',
    async () => (await jobs()).find((j) => j.state === 'failed'),
    withWork(TICK_MS + backoffBound(BACKOFF_MS, ATTEMPTS)),
    200,
  );
  proxy.set({ mode: 'pass' });
  assert.equal(first.attemptsMade, ATTEMPTS, 'every attempt was its own');
  assert.match(first.failure?.message ?? '', /attempt 3 of 3; no attempt left/);

  // Every other job that started before the first one's final failure skipped, naming it.
  const failedAt = Date.parse(first.finishedAt ?? '');
  const before = (await jobs()).filter((j) => j.id !== first.id && j.startedAt !== null && Date.parse(j.startedAt) < failedAt);
  t.diagnostic(`${before.length} ticks ran while ${first.id} was retried: ${before.map((j) => `${j.state}${isSkip(j) ? ' (skipped)' : ''}`).join(', ')}`);
  assert.ok(before.length >= 1, 'ticks fired during the backoffs');
  for (const j of before) {
    assert.ok(j.state === 'completed' && isSkip(j), `job ${j.id} ran while ${first.id} was retried: ${j.state} ${j.failure?.message ?? ''}`);
    assert.equal((j.result as SkippedBackup).coveredBy.jobId, first.id);
  }

  // The link passes again: the next tick backs up.
  const made = await waitFor(
    'a scheduled backup after the failure',
    async () => (await jobs()).find((j) => j.state === 'completed' && !isSkip(j) && Date.parse(j.startedAt ?? '0') >= failedAt),
    withWork(withinLoad(TICK_MS) + backoffBound(BACKOFF_MS, ATTEMPTS)),
    200,
  );
  assert.equal(made.trigger, 'schedule');
  assert.equal((await stack.request('PUT', '/admin/api/backup/config', { body: config(null) })).status, 200);
});
