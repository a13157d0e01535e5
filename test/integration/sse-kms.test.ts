import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BackupResult } from '@chango/contracts';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { SuiteScope, tempDir } from '../../testkit/fixtures.js';
import { runCli } from '../../testkit/processes.js';
import { Stack } from '../../testkit/stack.js';
import { createTestBucket, KMS_TEST_KEY_ID, minioClient, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';

const KEY_ID_HEADER = 'x-amz-server-side-encryption-aws-kms-key-id';

describe('SSE-KMS with a named key (Ceph RGW with a KMS; the requests read on the wire)', () => {
  const scope = new SuiteScope();
  let rgw: RgwCluster;
  let proxy: FaultProxy;
  let stack: Stack;
  let bucket: string;
  /** Every request head sent to S3 through the proxy, as text. */
  const sent: string[] = [];

  const destination = (extra: Record<string, unknown>) => ({
    endpoint: proxy.url,
    region: rgw.region,
    bucket,
    prefix: 'kms/',
    accessKey: rgw.accessKey,
    secretKey: rgw.secretKey,
    ...extra,
  });
  /** The request heads (method, path, headers) of the requests sent for `objectKey`, lower-cased. */
  const requestsFor = (objectKey: string) =>
    sent
      .join('')
      .split(/\r\n\r\n/)
      .filter((head) => /^(PUT|POST) \S+ HTTP\/1\.1\r\n/.test(head) && head.split('\r\n')[0]?.includes(`/${objectKey}`))
      .map((head) => head.toLowerCase());

  before(async () => {
    rgw = await startRgw();
    scope.after(() => rgw.stop());
    bucket = await createTestBucket(rgw);
    proxy = await FaultProxy.start(rgw.endpoint);
    scope.after(() => proxy.close());
    // Request heads only: bodies are binary and large; a head is the text before the first blank line of a chunk.
    proxy.tap(({ direction, chunk }) => {
      if (direction === 'up') sent.push(chunk.toString('latin1').slice(0, 4096));
    });
    stack = await Stack.start(scope, { users: 3, components: 2_000, env: { CHANGO_BACKUP_ATTEMPTS: '1', CHANGO_VERIFY_SCHEDULED: 'false' } });
  });
  after(() => scope.run());

  test('a key id is shown in the config and refused without sse aws:kms, naming the field', async () => {
    const refused = await stack.request<{ fields: { field: string; message: string }[] }>('PUT', '/admin/api/backup/config', { body: destination({ sse: 'AES256', sseKmsKeyId: KMS_TEST_KEY_ID }) });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.fields[0]?.field, 'sseKmsKeyId');
    assert.match(refused.body.fields[0]?.message ?? '', /only used with sse "aws:kms"/);
    const malformed = await stack.request<{ fields: { field: string }[] }>('PUT', '/admin/api/backup/config', { body: destination({ sse: 'aws:kms', sseKmsKeyId: 'my key' }) });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.fields[0]?.field, 'sseKmsKeyId');

    const saved = await stack.request<{ sse: string; sseKmsKeyId: string | null }>('PUT', '/admin/api/backup/config', { body: destination({ sse: 'aws:kms', sseKmsKeyId: KMS_TEST_KEY_ID }) });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    assert.deepEqual({ sse: saved.body.sse, sseKmsKeyId: saved.body.sseKmsKeyId }, { sse: 'aws:kms', sseKmsKeyId: KMS_TEST_KEY_ID });
    const shown = await stack.request<{ sseKmsKeyId: string | null }>('GET', '/admin/api/backup/config');
    assert.equal(shown.body.sseKmsKeyId, KMS_TEST_KEY_ID, 'the key id is not a secret: it is shown');
  });

  test('every object of a backup is sent with the key id header, RGW encrypts it with that key, and the backup restores', async (t) => {
    const made = await stack.request<BackupResult>('POST', '/admin/api/backup/run');
    assert.equal(made.status, 200, JSON.stringify(made.body));
    const backup = made.body;
    for (const objectKey of [backup.key, backup.sidecarKey]) {
      const heads = requestsFor(objectKey);
      // The archive: one multipart initiation (POST …?uploads) carries the headers; the sidecar: one PUT.
      const withHeaders = heads.filter((head) => head.includes(`\r\n${KEY_ID_HEADER}: ${KMS_TEST_KEY_ID.toLowerCase()}\r\n`) && head.includes('\r\nx-amz-server-side-encryption: aws:kms\r\n'));
      assert.ok(withHeaders.length >= 1, `${objectKey}: the key id header on the wire (${heads.length} request(s) seen)`);
    }
    assert.ok(rgw.admin, 'the local RGW answers radosgw-admin');
    const stat = await rgw.admin(['object', 'stat', '--bucket', bucket, '--object', backup.key]);
    assert.match(stat, /"user\.rgw\.crypt\.mode": "SSE-KMS"/);
    assert.match(stat, new RegExp(`"user\\.rgw\\.crypt\\.keyid": "${KMS_TEST_KEY_ID}"`));
    // The commit proved the object holds the archive: by its ETag where it is the parts' MD5s, otherwise by reading it back whole.
    const proof = /"key":"[^"]*","proof":"([a-z-]+)"/.exec(stack.worker.stdout)?.[1];
    t.diagnostic(`commit proof with SSE-KMS on RGW: ${proof}`);
    assert.ok(proof === 'etag' || proof === 'read-back', `a commit proof was logged (${proof})`);

    const target = join(await tempDir(t, 'chango-kms-restore'), 'data');
    const restored = await runCli(['restore', '--data-dir', target, '--key', backup.key], {
      CHANGO_S3_ENDPOINT: rgw.endpoint,
      CHANGO_S3_REGION: rgw.region,
      CHANGO_S3_BUCKET: bucket,
      CHANGO_S3_PREFIX: 'kms/',
      CHANGO_S3_ACCESS_KEY: rgw.accessKey,
      CHANGO_S3_SECRET_KEY: rgw.secretKey,
      CHANGO_ROOT_SECRET_FILE: stack.secretFile,
    });
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, /equal to the sidecar/);
  });

  test('a key the KMS does not know fails the backup in words naming the key; no upload is left', async () => {
    const saved = await stack.request('PUT', '/admin/api/backup/config', { body: destination({ sse: 'aws:kms', sseKmsKeyId: 'alias/no-such-key' }) });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    const failed = await stack.request<{ error: string; message: string }>('POST', '/admin/api/backup/run');
    assert.equal(failed.status, 502, JSON.stringify(failed.body));
    // RGW's answer to a key its KMS does not know is InvalidAccessKeyId: the words name the key as the other suspect.
    assert.match(failed.body.message, /SSE-KMS with the key alias\/no-such-key: .*check sseKmsKeyId too/);
    const s3 = minioClient(rgw);
    const uploads: string[] = [];
    for await (const upload of s3.listIncompleteUploads(bucket, 'kms/', true)) uploads.push(upload.key);
    assert.deepEqual(uploads, [], 'no incomplete upload is left');
  });
});
