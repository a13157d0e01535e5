import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type * as Minio from 'minio';
import { makeBackupKey, sidecarKey } from '@chango/contracts';
import { BackupBucket, S3Failure } from '@chango/s3';
import { destinationAt } from '../../testkit/destinations.js';
import { createTestBucket, minioClient, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';

/**
 * An archive streamed into a multipart upload as it is made, then committed,
 * against the real Ceph RGW: the commit proves the destination holds exactly
 * the bytes before it writes the sidecar — by the ETag where the destination
 * keeps MD5 ETags, by reading the object back whole where it does not (AWS
 * gives SSE-KMS and SSE-C objects ETags that are no MD5: modelled here by an
 * expected ETag the destination cannot match), and never by faith.
 */
const PREFIX = 'streamed/';
const PART_BYTES = 5 * 1024 * 1024;

describe('streamed upload and its commit proof (Ceph RGW)', () => {
  let rgw: RgwCluster;
  let bucket: string;
  let s3: Minio.Client;
  let backups: BackupBucket;

  before(async () => {
    rgw = await startRgw();
    bucket = await createTestBucket(rgw);
    s3 = minioClient(rgw);
    backups = new BackupBucket(destinationAt(rgw, bucket, PREFIX), { partBytes: PART_BYTES });
  });
  after(async () => {
    await rgw?.stop();
  });

  /** Streams `data` in uneven chunks into a new key; resolves with the key and what was sent. */
  async function streamed(data: Buffer) {
    const key = makeBackupKey(PREFIX, new Date(), randomUUID());
    const chunks: Buffer[] = [];
    for (let at = 0; at < data.length; at += 700_001) chunks.push(data.subarray(at, at + 700_001));
    const facts = await backups.uploadStreamed(key, Readable.from(chunks), { backupId: randomUUID() });
    return { key, facts };
  }

  async function bytesOf(objectKey: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of await s3.getObject(bucket, objectKey)) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  }

  test('the object is the bytes sent, in parts; its ETag is the proof, and the sidecar names their SHA-256', async () => {
    const data = randomBytes(2 * PART_BYTES + 12_345);
    const { key, facts } = await streamed(data);
    const sha256 = createHash('sha256').update(data).digest('hex');
    assert.deepEqual({ size: facts.size, sha256: facts.sha256 }, { size: data.length, sha256 });
    assert.match(facts.expectedEtag ?? '', /^[0-9a-f]{32}-3$/);
    assert.equal(await backups.commit(key, facts), 'etag');
    assert.deepEqual(await bytesOf(key), data);
    assert.equal((await bytesOf(sidecarKey(key))).toString(), `${sha256}  ${key.slice(PREFIX.length)}\n`);
  });

  test('where the ETag proves nothing, the object is read back whole and its SHA-256 compared before the sidecar', async () => {
    const data = randomBytes(PART_BYTES + 1);
    const { key, facts } = await streamed(data);
    assert.equal(await backups.commit(key, { ...facts, expectedEtag: `${'0'.repeat(32)}-2` }), 'read-back');
    assert.equal(await backups.readSidecar(key), facts.sha256);
  });

  test('an object that is not the archive (read back, another checksum) is refused in words, and no sidecar is written', async () => {
    const { key, facts } = await streamed(randomBytes(PART_BYTES + 1));
    const lied = { ...facts, sha256: 'f'.repeat(64), expectedEtag: `${'0'.repeat(32)}-2` };
    await assert.rejects(backups.commit(key, lied), (err: unknown) => {
      assert.ok(err instanceof S3Failure);
      assert.equal(err.code, 'ReadBackMismatch');
      assert.match(err.message, new RegExp(`reading ${key} back gave checksum ${facts.sha256}.*the upload is not whole`));
      return true;
    });
    assert.equal(await backups.readSidecar(key), undefined, 'not committed');
  });

  test('an object of another size is refused before anything else is read', async () => {
    const { key, facts } = await streamed(randomBytes(1000));
    await assert.rejects(backups.commit(key, { ...facts, size: facts.size + 1 }), /gave 1000 bytes, but 1001 bytes/);
    assert.equal(await backups.readSidecar(key), undefined);
  });
});
