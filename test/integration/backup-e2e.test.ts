import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import * as Minio from 'minio';
import type { Manifest } from '@chango/archive';
import { STORE_NAMES } from '@chango/state';
import { filesBelow, SuiteScope, tempDir } from '../../testkit/fixtures.js';
import { ldb, runCli } from '../../testkit/processes.js';
import { createTestBucket, minioClient, startRgw, type RgwCluster, type S3Target } from '../../testkit/local-rgw.js';
import { Stack } from '../../testkit/stack.js';

const run = promisify(execFile);
const KEY_PATTERN = /^prod\/chango-\d{8}T\d{6}Z-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.tar\.gz$/;
const PART_BYTES = 5 * 1024 * 1024;

function destinationFor(target: S3Target, bucket: string, extra: Record<string, unknown> = {}) {
  return { endpoint: target.endpoint, region: target.region, bucket, prefix: 'prod/', accessKey: target.accessKey, secretKey: target.secretKey, ...extra };
}

async function objectsIn(client: Minio.Client, bucket: string): Promise<string[]> {
  const names: string[] = [];
  for await (const item of client.listObjectsV2(bucket, '', true)) if (item.name) names.push(item.name);
  return names;
}

async function incompleteUploadsIn(client: Minio.Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const upload of client.listIncompleteUploads(bucket, '', true)) keys.push(upload.key);
  return keys;
}

describe('backup end to end: api → BullMQ → worker → S3 (Ceph RGW, SigV4 verified)', () => {
  const scope = new SuiteScope();
  let rgw: RgwCluster;
  let stack: Stack;
  let s3: Minio.Client;

  before(async () => {
    rgw = await startRgw();
    scope.after(() => rgw.stop());
    s3 = minioClient(rgw);
    // Big enough that the archive spans more than one 5 MiB multipart part.
    stack = await Stack.start(scope, {
      users: 6,
      components: 4000,
      env: { CHANGO_S3_PART_BYTES: String(PART_BYTES), CHANGO_BACKUP_ATTEMPTS: '2', CHANGO_BACKUP_BACKOFF_MS: '200' },
    });
  });
  after(() => scope.run());

  test('a run answers with key and SHA-256 of an archive that restores by the spec\'s manual procedure', async (t) => {
    const bucket = await createTestBucket(rgw);
    const put = await stack.request('PUT', '/admin/api/backup/config', { body: destinationFor(rgw, bucket) });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const source = await runCli(['state', 'stats', '--json'], stack.env);
    assert.equal(source.code, 0, source.stderr);

    const response = await stack.request<{ jobId: string; key: string; sha256: string; size: number; sse: string }>('POST', '/admin/api/backup/run');
    assert.equal(response.status, 200, JSON.stringify(response.body));
    const { key, sha256, size } = response.body;
    assert.match(key, KEY_PATTERN);
    assert.match(sha256, /^[0-9a-f]{64}$/);
    assert.ok(size > PART_BYTES, `archive of ${size} bytes spans more than one multipart part`);
    // Streamed in parts: the destination's ETag (MD5s of the parts it stored) is the commit's proof, no read-back needed.
    assert.match(stack.worker.stdout, new RegExp(`"key":"${key}","proof":"etag"`));

    // Download as an operator would, and check it with sha256sum -c against the sidecar.
    const dir = await tempDir(t, 'chango-restore');
    const archive = join(dir, basename(key));
    await s3.fGetObject(bucket, key, archive);
    const downloaded = await readFile(archive);
    assert.equal(downloaded.length, size);
    assert.equal(createHash('sha256').update(downloaded).digest('hex'), sha256);
    const sidecar = await s3.getObject(bucket, `${key}.sha256`);
    let sidecarText = '';
    for await (const chunk of sidecar) sidecarText += String(chunk);
    await writeFile(join(dir, `${basename(key)}.sha256`), sidecarText);
    await run('sha256sum', ['-c', `${basename(key)}.sha256`], { cwd: dir });
    // Made while uploaded: the checksum is in the sidecar (the commit marker), and the stored object's ETag is its parts' MD5s.
    assert.match((await s3.statObject(bucket, key)).etag, /^[0-9a-f]{32}-\d+$/);

    // The spec's restore: tar -xzf FILE -C /var/lib/chango/
    const restored = join(dir, 'var-lib-chango');
    await run('mkdir', [restored]);
    await run('tar', ['-xzf', archive, '-C', restored]);
    assert.deepEqual((await readdir(restored)).sort(), ['iam', 'kms', 'manifest.json', 'metadata']);
    const manifest = JSON.parse(await readFile(join(restored, 'manifest.json'), 'utf8')) as Manifest;

    for (const name of STORE_NAMES) {
      const lines = (await ldb([`--db=${join(restored, name)}`, 'scan'])).trim().split('\n');
      assert.equal(lines.length, manifest.stores[name].records, `ldb reads every ${name} record`);
    }
    const listed = new Map(STORE_NAMES.flatMap((name) => manifest.stores[name].files.map((f) => [f.path, f] as const)));
    const extracted = (await filesBelow(restored)).map((f) => f.slice(restored.length + 1)).filter((f) => f !== 'manifest.json');
    assert.deepEqual([...listed.keys()].sort(), extracted.sort(), 'the manifest lists exactly the files extracted');
    for (const path of extracted) {
      const bytes = await readFile(join(restored, path));
      assert.equal(createHash('sha256').update(bytes).digest('hex'), listed.get(path)?.sha256, path);
      assert.equal((await stat(join(restored, path))).mode & 0o777, 0o600, `${path} is 0600`);
    }

    const copy = await runCli(['state', 'stats', '--json', '--data-dir', restored], { CHANGO_ROOT_SECRET_FILE: stack.secretFile });
    assert.equal(copy.code, 0, copy.stderr);
    assert.deepEqual(JSON.parse(copy.stdout), JSON.parse(source.stdout), 'the restored state holds what the source held');

    // Written with SSE: RGW keeps the request's SSE choice as an object attribute.
    if (rgw.admin) {
      const objectStat = await rgw.admin(['object', 'stat', '--bucket', bucket, '--object', key]);
      assert.match(objectStat, /"user\.rgw\.x-amz-server-side-encryption": "AES256"/);
    }

    const job = await stack.request<{ state: string; progress: { phase: string; bytesDone: number } }>('GET', `/admin/api/backup/jobs/${response.body.jobId}`, { token: stack.viewerToken });
    assert.equal(job.body.state, 'completed');
    assert.equal(job.body.progress.phase, 'done');
    assert.equal(job.body.progress.bytesDone, size);
    const objects = await stack.request<{ objects: { key: string; sha256: string; complete: boolean }[] }>('GET', '/admin/api/backup/objects', { token: stack.viewerToken });
    assert.deepEqual(objects.body.objects.map((o) => [o.key, o.sha256, o.complete]), [[key, sha256, true]]);
  });

  test('a wrong S3 secret fails at once, in words, and leaves nothing behind', async () => {
    const bucket = await createTestBucket(rgw);
    await stack.request('PUT', '/admin/api/backup/config', { body: destinationFor(rgw, bucket, { secretKey: 'WRONGsecretWRONGsecretWRONGsecretWRONGse' }) });
    const response = await stack.request<{ message: string; job: { attemptsMade: number } }>('POST', '/admin/api/backup/run');
    assert.equal(response.status, 502);
    assert.match(response.body.message, new RegExp(`refused the credentials of access key ${rgw.accessKey} \\((SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied)\\)`));
    assert.equal(response.body.job.attemptsMade, 1, 'not retried: retrying cannot fix a credential');
    assert.deepEqual(await objectsIn(s3, bucket), []);
    assert.deepEqual(await incompleteUploadsIn(s3, bucket), []);
    assert.deepEqual(await readdir(join(stack.dataDir, '.backup-work')), [], 'checkpoint removed');
  });

  test('a missing bucket is named', async () => {
    await stack.request('PUT', '/admin/api/backup/config', { body: destinationFor(rgw, 'no-such-bucket-here') });
    const response = await stack.request<{ message: string }>('POST', '/admin/api/backup/run');
    assert.equal(response.status, 502);
    assert.match(response.body.message, /bucket "no-such-bucket-here" does not exist at S3 endpoint/);
  });

  test('an S3 endpoint that is down is retried with backoff, then reported as unreachable', async () => {
    await stack.request('PUT', '/admin/api/backup/config', { body: destinationFor(rgw, 'chango-backups', { endpoint: 'http://127.0.0.1:1' }) });
    const response = await stack.request<{ message: string; job: { attemptsMade: number } }>('POST', '/admin/api/backup/run');
    assert.equal(response.status, 502);
    assert.match(response.body.message, /cannot reach S3 endpoint http:\/\/127\.0\.0\.1:1 .*connection refused/);
    assert.equal(response.body.job.attemptsMade, 2, 'retried once (CHANGO_BACKUP_ATTEMPTS=2)');
  });

  test('an endpoint that refuses SSE over HTTP is reported in words, and sse "none" works there', async () => {
    const bucket = await createTestBucket(rgw);
    await stack.request('PUT', '/admin/api/backup/config', { body: destinationFor(rgw.strictSse, bucket) });
    const refused = await stack.request<{ message: string }>('POST', '/admin/api/backup/run');
    assert.equal(refused.status, 502);
    assert.match(refused.body.message, /refused server-side encryption AES256 .*set "sse": "none" in the backup config/);
    assert.deepEqual(await incompleteUploadsIn(s3, bucket), []);

    await stack.request('PUT', '/admin/api/backup/config', { body: destinationFor(rgw.strictSse, bucket, { sse: 'none' }) });
    const ok = await stack.request<{ key: string }>('POST', '/admin/api/backup/run');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual((await objectsIn(s3, bucket)).sort(), [ok.body.key, `${ok.body.key}.sha256`].sort());
  });

  test('two runs at once give one job', async () => {
    const bucket = await createTestBucket(rgw);
    await stack.request('PUT', '/admin/api/backup/config', { body: destinationFor(rgw, bucket) });
    const [first, second] = await Promise.all([
      stack.request<{ jobId: string; alreadyRunning: boolean }>('POST', '/admin/api/backup/run?wait=false'),
      stack.request<{ jobId: string; alreadyRunning: boolean }>('POST', '/admin/api/backup/run?wait=false'),
    ]);
    assert.equal(first.status, 202);
    assert.equal(second.status, 202);
    assert.equal(first.body.jobId, second.body.jobId);
    assert.deepEqual([first.body.alreadyRunning, second.body.alreadyRunning].sort(), [false, true]);
    const waited = await stack.request<{ jobId: string }>('POST', '/admin/api/backup/run');
    // Either the same job (still running) or, once it finished, a new one: never two at the same time.
    assert.equal(waited.status, 200);
    const archives = (await objectsIn(s3, bucket)).filter((name) => name.endsWith('.tar.gz'));
    assert.ok(archives.length >= 1 && archives.length <= 2, `${archives.length} archives`);
  });

  test('the S3 secret key appears in no response, no log line, no metric and nowhere in Redis', async () => {
    const metrics = await stack.request<string>('GET', '/metrics', { token: null });
    assert.match(metrics.body, /^chango_backup_last_success_timestamp_seconds \d/m);
    const transcript = stack.transcript();
    assert.ok(transcript.length > 1000, 'there is a transcript to look in');
    for (const secret of [rgw.secretKey, 'WRONGsecretWRONGsecretWRONGsecretWRONGse', stack.rootSecret]) {
      assert.ok(!transcript.includes(secret), 'secret not in responses or logs');
      assert.ok(!(await stack.redisDump()).includes(Buffer.from(secret)), 'secret not in Redis');
    }
  });
});
