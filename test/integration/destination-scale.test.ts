import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type * as Minio from 'minio';
import { makeBackupKey, redisKeys, sidecarBody, sidecarKey, verifyRecordKey, type DestinationInventory, type RetentionPolicy, type VerificationRecord } from '@chango/contracts';
import { BackupBucket } from '@chango/s3';
import { createLogger } from '@chango/telemetry';
import { applyRetention, MAX_DELETIONS_PER_PASS } from '../../apps/worker/src/retention.js';
import { RunLedger } from '../../apps/worker/src/run-ledger.js';
import { SuiteScope } from '../../testkit/fixtures.js';
import { deleteRedisPrefix, REDIS_URL } from '../../testkit/stack.js';
import { destinationAt } from '../../testkit/destinations.js';
import { createTestBucket, minioClient, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';
import { writeSyntheticBackups } from '../../testkit/synthetic-backups.js';

const HOUR = 3600_000;
const PREFIX = 'prod/';

describe('a destination with many backups (Ceph RGW): pages, the newest complete, retention by walk', () => {
  const scope = new SuiteScope();
  const redisPrefix = `chango-test-${randomBytes(4).toString('hex')}`;
  let rgw: RgwCluster;
  let s3: Minio.Client;
  let redis: Redis;
  let ledger: RunLedger;
  const silent = createLogger('test', { destination: new Writable({ write: (_chunk, _encoding, done) => done() }) });

  before(async () => {
    rgw = await startRgw();
    scope.after(() => rgw.stop());
    s3 = minioClient(rgw);
    redis = new Redis(REDIS_URL);
    scope.after(async () => {
      await deleteRedisPrefix(redisPrefix);
      redis.disconnect();
    });
    ledger = new RunLedger(redis, redisPrefix, silent);
  });
  after(() => scope.run());

  async function bucketWith(retention: RetentionPolicy | null): Promise<BackupBucket> {
    const name = await createTestBucket(rgw);
    return new BackupBucket(destinationAt(rgw, name, PREFIX, { sse: 'none', retention }));
  }

  async function archivesIn(bucket: BackupBucket): Promise<string[]> {
    const names: string[] = [];
    for await (const item of s3.listObjectsV2(bucket.bucket, PREFIX, false)) if (item.name?.endsWith('.tar.gz')) names.push(item.name);
    return names.sort();
  }

  async function inventory(): Promise<DestinationInventory | null> {
    const raw = await redis.get(redisKeys(redisPrefix).destinationInventory);
    return raw ? (JSON.parse(raw) as DestinationInventory) : null;
  }

  const lease = { confirm: async () => true };

  test('pages of 50 give every backup once, newest first, with its checksum and drill; the cursor ends at the oldest', async () => {
    const bucket = await bucketWith(null);
    const keys = await writeSyntheticBackups(s3, bucket.bucket, { prefix: PREFIX, count: 120, newest: new Date(), spacingMs: HOUR, verifiedEvery: 7 });
    const seen: string[] = [];
    let cursor: string | undefined;
    const sizes: number[] = [];
    for (;;) {
      const page = await bucket.page({ limit: 50, before: cursor });
      sizes.push(page.objects.length);
      seen.push(...page.objects.map((object) => object.key));
      for (const object of page.objects) {
        assert.equal(object.complete, true, object.key);
        assert.match(object.sha256 ?? '', /^[0-9a-f]{64}$/);
        assert.equal(object.verify?.ok ?? false, keys.indexOf(object.key) % 7 === 0, `drill of ${object.key}`);
      }
      if (page.next === null) break;
      cursor = page.next;
    }
    assert.deepEqual(sizes, [50, 50, 20]);
    assert.deepEqual(seen, [...keys].reverse());
  });

  test('a sidecar changed after the backup shows at the next listing (facts are remembered by ETag, not by key)', async () => {
    const bucket = await bucketWith(null);
    const [key] = await writeSyntheticBackups(s3, bucket.bucket, { prefix: PREFIX, count: 1, newest: new Date(), spacingMs: HOUR });
    const first = (await bucket.page({ limit: 10 })).objects[0];
    assert.equal(first?.complete, true);
    await s3.putObject(bucket.bucket, sidecarKey(key!), Buffer.from(sidecarBody(key!, 'f'.repeat(64))));
    assert.equal((await bucket.page({ limit: 10 })).objects[0]?.sha256, 'f'.repeat(64));
    await s3.putObject(bucket.bucket, sidecarKey(key!), Buffer.from('not a checksum\n'));
    const damaged = (await bucket.page({ limit: 10 })).objects[0];
    assert.deepEqual([damaged?.complete, damaged?.sha256], [false, null], 'a sidecar that holds no checksum does not make a backup');
  });

  test('the newest complete backup: an archive that never committed, or whose sidecar holds no checksum, is passed over', async () => {
    const bucket = await bucketWith(null);
    const keys = await writeSyntheticBackups(s3, bucket.bucket, { prefix: PREFIX, count: 300, newest: new Date(Date.now() - 2 * HOUR), spacingMs: 5 * 60_000 });
    const damaged = makeBackupKey(PREFIX, new Date(Date.now() - HOUR), randomUUID());
    await s3.putObject(bucket.bucket, damaged, Buffer.from('x'));
    await s3.putObject(bucket.bucket, sidecarKey(damaged), Buffer.from('garbage'));
    await s3.putObject(bucket.bucket, makeBackupKey(PREFIX, new Date(), randomUUID()), Buffer.from('uploading'));
    assert.equal((await bucket.newestComplete())?.key, keys.at(-1));
  });

  test('a destination that never chose a rule keeps the 30 newest and the newest that passed a drill; status gets the count', async () => {
    const bucket = await bucketWith(null);
    const keys = await writeSyntheticBackups(s3, bucket.bucket, { prefix: PREFIX, count: 40, newest: new Date(), spacingMs: HOUR });
    const drilled = keys[5]!;
    const record: VerificationRecord = { key: drilled, ok: true, kind: 'restore', source: 'primary', verifiedAt: new Date().toISOString(), durationMs: 1, nodeId: 'test', sha256: 'a'.repeat(64), records: { kms: 1, iam: 1, metadata: 1 }, error: null };
    await s3.putObject(bucket.bucket, verifyRecordKey(drilled), Buffer.from(JSON.stringify(record)));

    const { deleted } = await applyRetention(bucket, { lease, ledger, log: silent, keep: keys.at(-1)! });
    assert.deepEqual(deleted.sort(), keys.slice(0, 10).filter((key) => key !== drilled));
    assert.deepEqual(await archivesIn(bucket), [drilled, ...keys.slice(10)]);
    const counted = await inventory();
    assert.equal(counted?.committed, 31);
    assert.equal(counted?.archives, 31);
    assert.equal(counted?.retention.source, 'default');
    assert.match(counted?.retention.words ?? '', /30 newest.*\(default\)/);
  });

  test('keepAll keeps every backup, and counts the uncommitted archive apart', async () => {
    const bucket = await bucketWith({ keepAll: true });
    const keys = await writeSyntheticBackups(s3, bucket.bucket, { prefix: PREFIX, count: 40, newest: new Date(), spacingMs: HOUR, uncommitted: new Set([3]) });
    assert.deepEqual((await applyRetention(bucket, { lease, ledger, log: silent, keep: keys.at(-1)! })).deleted, []);
    assert.equal((await archivesIn(bucket)).length, 40);
    const counted = await inventory();
    assert.deepEqual([counted?.archives, counted?.committed, counted?.retention.source], [40, 39, 'configured']);
  });

  test(`with 1,500 backups and keepLast 1000, each pass deletes at most ${MAX_DELETIONS_PER_PASS} of the oldest, and the walk's count becomes whole`, async () => {
    const bucket = await bucketWith({ keepLast: 1000 });
    const keys = await writeSyntheticBackups(s3, bucket.bucket, { prefix: PREFIX, count: 1500, newest: new Date(), spacingMs: 10 * 60_000 });
    await redis.del(redisKeys(redisPrefix).destinationInventory);
    const { deleted: first } = await applyRetention(bucket, { lease, ledger, log: silent, keep: keys.at(-1)! });
    assert.deepEqual(first.sort(), keys.slice(0, MAX_DELETIONS_PER_PASS));
    const { deleted: second } = await applyRetention(bucket, { lease, ledger, log: silent, keep: keys.at(-1)! });
    assert.deepEqual(second.sort(), keys.slice(MAX_DELETIONS_PER_PASS, 500));
    assert.deepEqual(await archivesIn(bucket), keys.slice(500));
    // The walk reads one page (1,000 keys, about 330 backups) per pass: a whole count of 1,000 backups takes a few passes.
    let counted: DestinationInventory | null = null;
    for (let pass = 0; pass < 10 && counted?.committed !== 1000; pass += 1) {
      assert.deepEqual((await applyRetention(bucket, { lease, ledger, log: silent, keep: keys.at(-1)! })).deleted, []);
      counted = await inventory();
    }
    assert.equal(counted?.committed, 1000);
  });
});
