import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { buffer as readAll } from 'node:stream/consumers';
import * as Minio from 'minio';
import { createTestBucket, minioClient, startRgw, type RgwCluster, type S3Target } from '../../testkit/local-rgw.js';

/**
 * A client whose HTTP exchanges are recorded as `METHOD path?query -> status` lines. (minio's
 * traceOn() cannot do this: it never logs a request that failed, parseResponseError throws first.)
 */
function recordingClient(target: S3Target, overrides: Partial<Minio.ClientOptions> = {}): { client: Minio.Client; exchanges: string[] } {
  const exchanges: string[] = [];
  const transport: Minio.ClientOptions['transport'] = {
    request: ((options: http.RequestOptions, callback?: (res: http.IncomingMessage) => void) =>
      http.request(options, (res) => {
        exchanges.push(`${options.method} ${options.path} -> ${res.statusCode}`);
        callback?.(res);
      })) as typeof http.request,
  };
  return { client: minioClient(target, { transport, ...overrides }), exchanges };
}


async function collect<T>(stream: Readable): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item as T);
  return items;
}

/** The xattrs `radosgw-admin object stat` shows for an object. */
async function objectAttrs(target: S3Target, bucket: string, key: string): Promise<Record<string, string>> {
  assert.ok(target.admin, 'needs the local RGW cluster (radosgw-admin)');
  const stat = JSON.parse(await target.admin(['object', 'stat', '--bucket', bucket, '--object', key])) as { attrs?: Record<string, string> };
  assert.ok(stat.attrs, 'object stat has attrs');
  return stat.attrs;
}

const MiB = 1024 * 1024;
const SSE = { 'x-amz-server-side-encryption': 'AES256' };

describe('RGW test fixture', () => {
  let cluster: RgwCluster;
  let s3: Minio.Client;
  let bucket: string;

  before(async () => {
    cluster = await startRgw();
    s3 = minioClient(cluster);
    bucket = await createTestBucket(cluster);
  });

  after(async () => {
    await cluster.stop();
    if (cluster.admin) {
      // stop() really stopped the gateway: minio now gets a refused connection (no retry, no S3 code).
      await assert.rejects(s3.bucketExists(bucket), { code: 'ECONNREFUSED' });
    }
  });

  test('put, stat and get an object with the cluster keys round-trips its content', async () => {
    const body = Buffer.concat([Buffer.from('chango backup archive\n'), randomBytes(64 * 1024)]);
    const put = await s3.putObject(bucket, 'backups/a.tar.gz', body, body.length, { 'Content-Type': 'application/gzip' });
    const md5 = createHash('md5').update(body).digest('hex');
    assert.equal(put.etag, md5, 'single PUT: ETag is the MD5 of the plaintext (even though RGW-AUTO encrypts at rest)');

    const stat = await s3.statObject(bucket, 'backups/a.tar.gz');
    assert.equal(stat.size, body.length);
    assert.equal(stat.etag, md5);
    assert.equal(stat.metaData['content-type'], 'application/gzip');

    const got = await readAll(await s3.getObject(bucket, 'backups/a.tar.gz'));
    assert.ok(got.equals(body), 'downloaded bytes equal uploaded bytes');
    assert.ok((await s3.bucketExists(bucket)) && !(await s3.bucketExists(`${bucket}-missing`)));
  });

  test('the server verifies SigV4: a wrong secret key is refused with SignatureDoesNotMatch', async () => {
    const wrongSecret = minioClient(cluster, { secretKey: `${cluster.secretKey.slice(0, -1)}${cluster.secretKey.endsWith('x') ? 'y' : 'x'}` });
    await assert.rejects(wrongSecret.putObject(bucket, 'forged', Buffer.from('x')), { name: 'S3Error', code: 'SignatureDoesNotMatch' });
    await assert.rejects(s3.statObject(bucket, 'forged'), { code: 'NotFound' }, 'nothing was written');

    const unknownKey = minioClient(cluster, { accessKey: 'A'.repeat(20) });
    await assert.rejects(unknownKey.putObject(bucket, 'forged', Buffer.from('x')), { name: 'S3Error', code: 'InvalidAccessKeyId' });
  });

  test('RGW error codes as minio reports them: NoSuchBucket, NoSuchKey, and NotFound for a HEAD', async () => {
    await assert.rejects(s3.putObject(`${bucket}-missing`, 'k', Buffer.from('x')), { name: 'S3Error', code: 'NoSuchBucket' });
    await assert.rejects(s3.getObject(bucket, 'no-such-key'), { name: 'S3Error', code: 'NoSuchKey' });
    // HEAD answers carry no body, so minio makes the code up from the 404 status.
    await assert.rejects(s3.statObject(bucket, 'no-such-key'), { name: 'S3Error', code: 'NotFound' });
  });

  test('a multipart upload from a stream of unknown size: 3 parts of 5 MiB max, size and SHA-256 match', async () => {
    // minio cuts parts by gathering source chunks until partSize; it never splits a chunk, so a
    // source yielding chunks bigger than partSize makes bigger parts. Ours yields 256 KiB chunks.
    const { client, exchanges } = recordingClient(cluster, { partSize: 5 * MiB });
    const total = 12 * MiB + 12345;
    const sha = createHash('sha256');
    let left = total;
    const source = new Readable({
      read() {
        if (left === 0) return void this.push(null);
        const chunk = randomBytes(Math.min(left, 256 * 1024));
        left -= chunk.length;
        sha.update(chunk);
        this.push(chunk);
      },
    });
    await client.putObject(bucket, 'backups/big.tar.gz', source, undefined, { 'Content-Type': 'application/gzip' });
    const uploaded = sha.digest('hex');

    const partPuts = exchanges.filter((e) => /^PUT \/[^?\s]+\?partNumber=\d+&uploadId=\S+ -> 200$/.test(e));
    assert.equal(partPuts.length, 3, `ceil(12 MiB / 5 MiB) part uploads, got:\n${exchanges.join('\n')}`);
    assert.match(exchanges[0] ?? '', /^GET \/[^?\s]+\?uploads&\S* -> 200$/, 'minio lists multipart uploads (ListMultipartUploads) first');

    const stat = await s3.statObject(bucket, 'backups/big.tar.gz');
    assert.equal(stat.size, total);
    assert.match(stat.etag, /-3$/, 'server-side multipart ETag names 3 parts');
    const downloaded = createHash('sha256').update(await readAll(await s3.getObject(bucket, 'backups/big.tar.gz'))).digest('hex');
    assert.equal(downloaded, uploaded);
  });

  test('SSE AES256: accepted over HTTP by the main gateway and stored as an object attribute; refused (400 InvalidRequest) by strictSse', async (t) => {
    const body = randomBytes(4096);
    await s3.putObject(bucket, 'sse/on', body, body.length, SSE);
    assert.ok((await readAll(await s3.getObject(bucket, 'sse/on'))).equals(body), 'reads back decrypted');
    await s3.putObject(bucket, 'sse/off', body, body.length);

    if (!cluster.admin) {
      t.diagnostic('external S3: only the SSE PUT and read-back were checked (no radosgw-admin, no strict gateway)');
      return;
    }
    const on = await objectAttrs(cluster, bucket, 'sse/on');
    assert.equal(on['user.rgw.x-amz-server-side-encryption'], 'AES256', 'the SSE request header is stored');
    assert.equal(on['user.rgw.crypt.mode'], 'RGW-AUTO', 'the data is encrypted with the default key');
    const off = await objectAttrs(cluster, bucket, 'sse/off');
    assert.equal(off['user.rgw.x-amz-server-side-encryption'], undefined, 'no SSE attribute without the header');

    const { client: strict, exchanges } = recordingClient(cluster.strictSse);
    await assert.rejects(strict.putObject(bucket, 'sse/strict', body, body.length, SSE), { name: 'S3Error', code: 'InvalidRequest', message: '' });
    assert.match(exchanges.at(-1) ?? '', /^PUT \/\S+\/sse\/strict -> 400$/, 'HTTP status 400');
    await assert.rejects(s3.statObject(bucket, 'sse/strict'), { code: 'NotFound' }, 'nothing was written');
    // Only the SSE header is refused there: plain requests work and see the same cluster.
    await strict.putObject(bucket, 'sse/strict-plain', body, body.length);
    assert.ok((await readAll(await strict.getObject(bucket, 'sse/on'))).equals(body), 'strictSse reads what main wrote');
    assert.equal((await s3.statObject(bucket, 'sse/strict-plain')).size, body.length, 'main sees what strictSse wrote');
  });

  test('listIncompleteUploads and removeIncompleteUpload see and abort an unfinished multipart upload', async () => {
    const key = 'backups/unfinished.tar.gz';
    const uploadId = await s3.initiateNewMultipartUpload(bucket, key, { 'Content-Type': 'application/gzip' });
    const part = randomBytes(1024);
    await s3.uploadPart({ bucketName: bucket, objectName: key, uploadID: uploadId, partNumber: 1, headers: { 'Content-Length': part.length } }, part);

    const listed = await collect<Minio.IncompleteUploadedBucketItem>(s3.listIncompleteUploads(bucket, 'backups/', true));
    assert.deepEqual(
      listed.map((u) => [u.key, u.uploadId, u.size]),
      [[key, uploadId, part.length]],
    );

    await s3.removeIncompleteUpload(bucket, key);
    assert.deepEqual(await collect(s3.listIncompleteUploads(bucket, 'backups/', true)), []);
    await assert.rejects(s3.statObject(bucket, key), { code: 'NotFound' });
  });

  test('removeObjects deletes several objects in one multi-object delete', async () => {
    const keys = ['del/1', 'del/2', 'del/3'];
    for (const key of keys) await s3.putObject(bucket, key, Buffer.from(key));
    await s3.putObject(bucket, 'keep/1', Buffer.from('keep'));

    const errors = await s3.removeObjects(bucket, [...keys, 'del/never-existed']);
    assert.deepEqual(errors.filter((e) => e?.Error), [], 'no per-key errors (a missing key counts as deleted)');

    const left = await collect<Minio.BucketItem>(s3.listObjectsV2(bucket, '', true));
    const names = left.map((o) => o.name).filter((n) => n?.startsWith('del/') || n?.startsWith('keep/'));
    assert.deepEqual(names, ['keep/1']);
  });

  test('createTestBucket makes a fresh, empty, DNS-safe bucket each time', async () => {
    const other = await createTestBucket(cluster);
    assert.notEqual(other, bucket);
    assert.match(other, /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/);
    assert.ok(await s3.bucketExists(other));
    assert.deepEqual(await collect(s3.listObjectsV2(other, '', true)), []);
  });
});
