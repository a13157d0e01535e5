import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTestBucket, minioClient, startRgw } from '../../testkit/local-rgw.js';
import { waitFor } from '../../testkit/fixtures.js';
import { jobLockBound, SAFETY_NET_MS, withWork } from '../../testkit/liveness.js';
import { Stack } from '../../testkit/stack.js';

interface JobBody {
  state: string;
  progress: { phase: string } | null;
  failure: { message: string } | null;
  result: { key: string } | null;
}

test('a worker killed mid-backup leaves no job running forever and no leftovers', async (t) => {
  const rgw = await startRgw();
  t.after(() => rgw.stop());
  const bucket = await createTestBucket(rgw);
  const s3 = minioClient(rgw);

  // A short job lock so a dead worker's job is noticed within seconds (production: 30 s).
  const LOCK_MS = 2000;
  const stack = await Stack.start(t, { components: 4000, env: { CHANGO_JOB_LOCK_MS: String(LOCK_MS), CHANGO_S3_PART_BYTES: String(5 * 1024 * 1024), CHANGO_GZIP_LEVEL: '9' } });
  const put = await stack.request('PUT', '/admin/api/backup/config', {
    body: { endpoint: rgw.endpoint, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey },
  });
  assert.equal(put.status, 200);

  const started = await stack.request<{ jobId: string }>('POST', '/admin/api/backup/run?wait=false');
  assert.equal(started.status, 202);
  const jobPath = `/admin/api/backup/jobs/${started.body.jobId}`;

  // Kill the worker once it is past the checkpoint: archiving into the upload (how soon is the backup's own work: the safety net bounds it).
  const killedIn = await waitFor(
    'the backup to reach the upload phase (archiving into the upload)',
    async () => {
      const job = await stack.request<JobBody>('GET', jobPath);
      assert.notEqual(job.body.state, 'completed', 'the backup finished before the worker could be killed: make it bigger');
      const phase = job.body.progress?.phase;
      if (phase !== 'upload') return undefined;
      stack.worker.child.kill('SIGKILL');
      return phase;
    },
    SAFETY_NET_MS,
    20,
  );
  await stack.worker.exited;
  assert.equal((await stack.request<JobBody>('GET', jobPath)).body.state, 'active', 'the dead worker\'s job still looks active');

  // A worker coming back (systemd restart) cleans the work dir, takes over the stalled job and finishes it.
  await stack.startWorker();
  // Taken over within the documented bound (3 job locks), then made again from the start: that is work of its own.
  const final = await waitFor(
    'the stalled job to be taken over and end',
    async () => {
      const job = await stack.request<JobBody>('GET', jobPath);
      return job.body.state === 'completed' || job.body.state === 'failed' ? job.body : undefined;
    },
    withWork(jobLockBound(LOCK_MS)),
  );
  t.diagnostic(`killed while ${killedIn}; the job then ${final.state}${final.failure ? `: ${final.failure.message}` : ''}`);

  const names: string[] = [];
  for await (const item of s3.listObjectsV2(bucket, '', true)) if (item.name) names.push(item.name);
  const incomplete: string[] = [];
  for await (const upload of s3.listIncompleteUploads(bucket, '', true)) incomplete.push(upload.key);
  assert.deepEqual(incomplete, [], 'no dangling multipart upload');
  // One death is not the end of a backup: the job is taken over and made again (it fails only after CHANGO_BACKUP_ATTEMPTS deaths).
  assert.equal(final.state, 'completed', `the taken-over job completes: ${final.failure?.message ?? ''}`);
  assert.ok(final.result);
  assert.deepEqual(names.sort(), [final.result.key, `${final.result.key}.sha256`].sort(), 'only the finished backup and its sidecar');
  assert.deepEqual(await readdir(join(stack.dataDir, '.backup-work')), [], 'no checkpoint or spool file left');
});

test('incomplete uploads a crashed attempt left are aborted by the next backup; unrelated ones are left alone', async (t) => {
  const rgw = await startRgw();
  t.after(() => rgw.stop());
  const bucket = await createTestBucket(rgw);
  const s3 = minioClient(rgw);
  const leftover = 'prod/chango-20260101T000000Z-0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d.tar.gz';
  const unrelated = 'prod/someone-elses-upload.bin';
  await s3.initiateNewMultipartUpload(bucket, leftover, {});
  await s3.initiateNewMultipartUpload(bucket, unrelated, {});

  const stack = await Stack.start(t);
  const put = await stack.request('PUT', '/admin/api/backup/config', {
    body: { endpoint: rgw.endpoint, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey },
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const run = await stack.request('POST', '/admin/api/backup/run');
  assert.equal(run.status, 200, JSON.stringify(run.body));

  const incomplete: string[] = [];
  for await (const upload of s3.listIncompleteUploads(bucket, '', true)) incomplete.push(upload.key);
  assert.deepEqual(incomplete, [unrelated]);
  const sweep = stack.worker.stdout.split('\n').find((line) => line.includes('removed what failed or interrupted attempts left at the destination'));
  assert.ok(sweep, 'the worker logs what it removed');
  assert.deepEqual((JSON.parse(sweep) as { keys: string[] }).keys, [leftover], 'it names the leftover, and only ours');
});

test('past the configured wait, a run answers 202 with the status URL, and the job goes on to complete', async (t) => {
  const rgw = await startRgw();
  t.after(() => rgw.stop());
  const bucket = await createTestBucket(rgw);
  const stack = await Stack.start(t, { apiEnv: { CHANGO_RUN_WAIT_MS: '1' } });
  const put = await stack.request('PUT', '/admin/api/backup/config', {
    body: { endpoint: rgw.endpoint, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey },
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const run = await stack.request<{ jobId: string; statusUrl: string }>('POST', '/admin/api/backup/run');
  assert.equal(run.status, 202);
  assert.equal(run.headers.get('location'), run.body.statusUrl);
  const state = await waitFor('the backup to end', async () => {
    const { body } = await stack.request<{ state: string }>('GET', run.body.statusUrl);
    return body.state === 'completed' || body.state === 'failed' ? body.state : undefined;
  });
  assert.equal(state, 'completed');
});
