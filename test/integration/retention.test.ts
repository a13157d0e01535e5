import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type * as Minio from 'minio';
import { sidecarBody, type BackupResult, type VerificationRecord } from '@chango/contracts';
import { SuiteScope } from '../../testkit/fixtures.js';
import { Stack } from '../../testkit/stack.js';
import { createTestBucket, minioClient, startRgw, type RgwCluster, type S3Target } from '../../testkit/local-rgw.js';

function destination(target: S3Target, bucket: string, extra: Record<string, unknown>) {
  return { endpoint: target.endpoint, region: target.region, bucket, prefix: 'prod/', accessKey: target.accessKey, secretKey: target.secretKey, ...extra };
}

async function put(s3: Minio.Client, bucket: string, key: string, body: string): Promise<void> {
  await s3.putObject(bucket, key, Buffer.from(body));
}

async function allObjects(s3: Minio.Client, bucket: string): Promise<string[]> {
  const names: string[] = [];
  for await (const item of s3.listObjectsV2(bucket, '', true)) if (item.name) names.push(item.name);
  return names.sort();
}

/** An old, complete backup as a worker would have left it (archive + sidecar), made by hand with an old timestamp. */
async function oldBackup(s3: Minio.Client, bucket: string, day: number, verified = false): Promise<string> {
  const key = `prod/chango-202001${String(day).padStart(2, '0')}T030000Z-${randomUUID()}.tar.gz`;
  await put(s3, bucket, key, `archive of day ${day}`);
  await put(s3, bucket, `${key}.sha256`, sidecarBody(key, 'b'.repeat(64)));
  if (verified) {
    const record: VerificationRecord = { key, ok: true, kind: 'restore', source: 'primary', verifiedAt: '2020-01-20T00:00:00.000Z', durationMs: 1, nodeId: 'old', sha256: 'b'.repeat(64), records: { kms: 1, iam: 1, metadata: 1 }, error: null };
    await put(s3, bucket, `${key}.verify.json`, JSON.stringify(record));
  }
  return key;
}

describe('retention at the destination (Ceph RGW)', () => {
  const scope = new SuiteScope();
  let rgw: RgwCluster;
  let stack: Stack;
  let s3: Minio.Client;
  let bucket: string;
  let old: { unverified: string[]; verified: string };
  let unrelated: string[];

  before(async () => {
    rgw = await startRgw();
    scope.after(() => rgw.stop());
    s3 = minioClient(rgw);
    stack = await Stack.start(scope, { users: 2, components: 20, env: { CHANGO_BACKUP_ATTEMPTS: '1' } });
    bucket = await createTestBucket(rgw);
    const verified = await oldBackup(s3, bucket, 2, true);
    old = { verified, unverified: [await oldBackup(s3, bucket, 1), await oldBackup(s3, bucket, 3), await oldBackup(s3, bucket, 4)] };
    // Things retention must never touch: other names under the prefix, a subfolder, another prefix, a recent incomplete archive.
    unrelated = [
      'prod/notes.txt',
      'prod/chango-manual-copy.tar.gz',
      `prod/archive/chango-20190101T000000Z-${randomUUID()}.tar.gz`,
      `other/chango-20190101T000000Z-${randomUUID()}.tar.gz`,
      `prod/chango-20200105T000000Z-${randomUUID()}.tar.gz`,
    ];
    for (const key of unrelated) await put(s3, bucket, key, 'not yours');
    await put(s3, bucket, `${unrelated[3]}.sha256`, sidecarBody(unrelated[3] as string, 'c'.repeat(64)));
    unrelated.push(`${unrelated[3]}.sha256`);
  });
  after(() => scope.run());

  test('a failed run deletes nothing', async () => {
    const before = await allObjects(s3, bucket);
    // The strict gateway refuses SSE over plain HTTP: the run fails before it commits.
    const config = await stack.request('PUT', '/admin/api/backup/config', { body: destination(rgw.strictSse, bucket, { sse: 'AES256', retention: { keepLast: 1 } }) });
    assert.equal(config.status, 200);
    const run = await stack.request('POST', '/admin/api/backup/run');
    assert.equal(run.status, 502, JSON.stringify(run.body));
    assert.deepEqual(await allObjects(s3, bucket), before);
    assert.doesNotMatch(stack.worker.stdout, /retention: deleted/);
  });

  test('after a backup, keepLast removes old backups with their sidecars, keeps the newest verified one and everything not ours', async () => {
    const config = await stack.request('PUT', '/admin/api/backup/config', { body: destination(rgw, bucket, { sse: 'none', retention: { keepLast: 1 } }) });
    assert.equal(config.status, 200);
    const run = await stack.request<BackupResult>('POST', '/admin/api/backup/run');
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.deepEqual([...run.body.retentionDeleted].sort(), [...old.unverified].sort());

    const left = await allObjects(s3, bucket);
    const expected = [
      run.body.key,
      `${run.body.key}.sha256`,
      old.verified,
      `${old.verified}.sha256`,
      `${old.verified}.verify.json`,
      ...unrelated,
    ].sort();
    assert.deepEqual(left, expected);
    for (const key of old.unverified) assert.match(stack.worker.stdout, new RegExp(`"key":"${key}".*retention: deleted backup`));

    const metrics = await stack.request<string>('GET', '/metrics', { token: null });
    assert.match(metrics.body, /^chango_backup_retention_deleted_total 3$/m);
    // Counted by the same pass: the new backup, the newest verified one, and the recent incomplete archive.
    assert.match(metrics.body, /^chango_backup_destination_backups\{state="committed"\} 2$/m);
    assert.match(metrics.body, /^chango_backup_destination_backups\{state="incomplete"\} 1$/m);
  });
});
