import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type * as Minio from 'minio';
import { makeBackupKey, type BackupDestination } from '@chango/contracts';
import { formatDuration } from '@chango/telemetry';
import { BackupBucket, S3_TIMEOUT_CODE, S3Failure, S3TimeoutError, type S3Bound, type S3Timeouts } from '@chango/s3';
import { destinationAt } from '../../testkit/destinations.js';
import { createTestBucket, minioClient, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { waitFor } from '../../testkit/fixtures.js';

/**
 * Every S3 call of BackupBucket is bounded, against the real Ceph RGW behind a
 * proxy that can swallow every byte while keeping connections open (a
 * partition where packets vanish): minio-js alone would wait forever there.
 *
 * The bounds are small and every wait below is derived from them with a wide
 * margin (SLACK): the suite must pass while other processes load both cores.
 * Lower bounds are exact (a timer never fires early); upper bounds are SLACK
 * times the bound that should end the call, plus what else the call does.
 */
const BOUNDS: Partial<S3Timeouts> = { connectMs: 1000, idleMs: 1500, callMs: 4000 };
const { connectMs, idleMs, callMs } = BOUNDS as S3Timeouts;
const SLACK = 5;
/** "At once" (abortInFlight): no bound involved, a margin for a loaded machine only. */
const PROMPT_MS = 3000;
const MiB = 1024 * 1024;
const PREFIX = 'prod/';

function destination(rgw: RgwCluster, endpoint: string, bucket: string): BackupDestination {
  return destinationAt(rgw, bucket, PREFIX, { endpoint });
}

const newKey = () => makeBackupKey(PREFIX, new Date(), randomUUID());
const facts = (size: number) => ({ size, sha256: 'a'.repeat(64), backupId: randomUUID() });

/** `total` bytes in 256 KiB chunks; `at(bytes)` is called as each chunk is produced. */
function archiveSource(total: number, at: (produced: number) => void = () => undefined): Readable {
  let produced = 0;
  return new Readable({
    read() {
      if (produced >= total) return void this.push(null);
      const chunk = Buffer.alloc(Math.min(256 * 1024, total - produced), produced % 251);
      produced += chunk.length;
      at(produced);
      this.push(chunk);
    },
  });
}

async function rejection(promise: Promise<unknown>, what: string): Promise<unknown> {
  return promise.then(
    () => assert.fail(`${what} succeeded`),
    (err: unknown) => err,
  );
}

/** A bound hit, as the S3 layer must report it: transient, retryable, in words that name endpoint, operation, bound and its variable. */
function assertBoundHit(err: unknown, expected: { endpoint: string; operation: string; bound: S3Bound; ms: number }): void {
  assert.ok(err instanceof S3Failure, `an S3Failure, got ${err instanceof Error ? err.stack : String(err)}`);
  assert.equal(err.kind, 'transient', err.message);
  assert.equal(err.retryable, true);
  assert.equal(err.code, S3_TIMEOUT_CODE);
  const cause = err.cause;
  assert.ok(cause instanceof S3TimeoutError, `the cause is the bound hit: ${String(cause)}`);
  assert.equal(cause.bound, expected.bound, err.message);
  assert.equal(cause.ms, expected.ms);
  for (const part of [`S3 endpoint ${expected.endpoint}`, expected.operation, formatDuration(expected.ms), cause.setting]) {
    assert.ok(err.message.includes(part), `the message names "${part}": ${err.message}`);
  }
  assert.doesNotMatch(err.message, /will be retried/);
}

async function incompleteUploads(s3: Minio.Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const upload of s3.listIncompleteUploads(bucket, PREFIX, true)) keys.push((upload as Minio.IncompleteUploadedBucketItem).key);
  return keys;
}

describe('S3 calls are bounded (Ceph RGW behind a proxy that goes silent)', () => {
  let rgw: RgwCluster;
  let s3: Minio.Client;

  before(async () => {
    rgw = await startRgw();
    s3 = minioClient(rgw);
  });

  after(async () => {
    await rgw?.stop();
  });

  test('an upload blackholed mid-way fails at the idle bound in words; once the link passes again, discard leaves no incomplete upload', async (t) => {
    const bucketName = await createTestBucket(rgw);
    const proxy = await FaultProxy.startIn(t, rgw.endpoint);
    const bucket = new BackupBucket(destination(rgw, proxy.url, bucketName), { partBytes: 5 * MiB, timeouts: BOUNDS });
    const key = newKey();
    const total = 30 * MiB;
    let blackholedAt = 0;
    // Blackholed once two parts' worth was read: the multipart upload is under way, a part in flight.
    const source = archiveSource(total, (produced) => {
      if (produced >= 12 * MiB && !blackholedAt) {
        proxy.set({ mode: 'blackhole' });
        blackholedAt = Date.now();
      }
    });

    const err = await rejection(bucket.upload(key, source, facts(total)), 'an upload through a blackhole');
    const elapsed = Date.now() - blackholedAt;
    assert.ok(blackholedAt > 0, 'the link went silent during the upload');
    assertBoundHit(err, { endpoint: proxy.url, operation: `uploading ${key}`, bound: 'idle', ms: idleMs });
    // The idle bound, then upload's own attempt to clean up (bounded as well: both removals at once).
    // (The last byte may have moved a little before the blackhole: no exact lower bound.)
    assert.ok(elapsed >= idleMs / 2, `not before the idle bound: ${elapsed} ms`);
    assert.ok(elapsed < SLACK * (idleMs + callMs), `within the bound: ${elapsed} ms`);
    assert.ok(source.destroyed, 'the source is released');

    // The cleanup could not reach the server either: the incomplete multipart upload is still there (minio never aborts one).
    assert.deepEqual(await incompleteUploads(s3, bucketName), [key]);
    const failedDiscard = await rejection(bucket.discard(key), 'discard through a blackhole');
    assert.ok(failedDiscard instanceof S3Failure && failedDiscard.code === S3_TIMEOUT_CODE, `discard is bounded and says so: ${String(failedDiscard)}`);

    proxy.set({ mode: 'pass' });
    await bucket.discard(key);
    assert.deepEqual(await incompleteUploads(s3, bucketName), [], 'discard aborted the multipart upload');
    await assert.rejects(s3.statObject(bucketName, key), { code: 'NotFound' });
  });

  test('a listing against a blackholed endpoint fails at the idle bound; with a longer idle bound, at the call deadline, leaving no socket in use', async (t) => {
    const bucketName = await createTestBucket(rgw);
    const proxy = await FaultProxy.startIn(t, rgw.endpoint);
    const bucket = new BackupBucket(destination(rgw, proxy.url, bucketName), { timeouts: BOUNDS });
    assert.deepEqual((await bucket.page({ limit: 50 })).objects, [], 'a healthy link first (a keep-alive connection waits in the pool)');
    proxy.set({ mode: 'blackhole' });

    let started = Date.now();
    const idle = await rejection(bucket.page({ limit: 50 }), 'a listing through a blackhole');
    let elapsed = Date.now() - started;
    assertBoundHit(idle, { endpoint: proxy.url, operation: 'listing backups', bound: 'idle', ms: idleMs });
    assert.ok(elapsed >= idleMs && elapsed < SLACK * idleMs, `at the idle bound: ${elapsed} ms`);

    const patient = new BackupBucket(destination(rgw, proxy.url, bucketName), { timeouts: { ...BOUNDS, idleMs: 60_000, callMs: 1500 } });
    started = Date.now();
    const deadline = await rejection(patient.page({ limit: 50 }), 'a listing through a blackhole');
    elapsed = Date.now() - started;
    assertBoundHit(deadline, { endpoint: proxy.url, operation: 'listing backups', bound: 'call', ms: 1500 });
    assert.ok(elapsed >= 1500 && elapsed < SLACK * 1500, `at the call deadline: ${elapsed} ms`);
    // Nothing of the call keeps running: its connection is destroyed (the agent forgets it once it has closed).
    const inUse = () => Object.values(patient.agent.sockets).flatMap((list) => list ?? []);
    for (let waited = 0; inUse().length > 0 && waited < SLACK * 200; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(inUse(), [], 'no socket left in use');
  });

  test('a download whose link goes silent mid-read errors at the idle bound', async (t) => {
    const bucketName = await createTestBucket(rgw);
    const key = newKey();
    const size = 32 * MiB;
    await s3.putObject(bucketName, key, Buffer.alloc(size, 7), size);
    const proxy = await FaultProxy.startIn(t, rgw.endpoint);
    const bucket = new BackupBucket(destination(rgw, proxy.url, bucketName), { timeouts: BOUNDS });

    const archive = await bucket.open(key);
    assert.equal(archive.size, size);
    let read = 0;
    let blackholedAt = 0;
    const err = await rejection(
      (async () => {
        for await (const chunk of archive.stream) {
          read += (chunk as Buffer).length;
          if (read >= MiB && !blackholedAt) {
            proxy.set({ mode: 'blackhole' });
            blackholedAt = Date.now();
          }
        }
      })(),
      'reading a download through a blackhole',
    );
    const elapsed = Date.now() - blackholedAt;
    assertBoundHit(err, { endpoint: proxy.url, operation: `downloading ${key}`, bound: 'idle', ms: idleMs });
    assert.ok(read < size, `the download stopped part-way (${read} of ${size} bytes)`);
    assert.ok(elapsed >= idleMs / 2 && elapsed < SLACK * idleMs, `at the idle bound: ${elapsed} ms`);
  });

  test('a trickling link, bytes moving now and then, still ends: upload and download at max(call timeout, size at the minimum rate)', async (t) => {
    const bucketName = await createTestBucket(rgw);
    // 128 KiB/s, paced in twentieths of a second: bytes keep moving, well inside the idle bound; the transfers need far longer than their deadline.
    const slow = (await FaultProxy.startIn(t, rgw.endpoint, { mode: 'slow', bytesPerSecond: 128 * 1024 })).url;
    const timeouts = { ...BOUNDS, idleMs: 5000, callMs: 2000, minBytesPerSec: MiB };
    const bucket = new BackupBucket(destination(rgw, slow, bucketName), { partBytes: 5 * MiB, timeouts });

    const uploadSize = 6 * MiB;
    const uploadDeadline = 6000; // max(2 s, 6 MiB at 1 MiB/s)
    const key = newKey();
    let started = Date.now();
    const upload = await rejection(bucket.upload(key, archiveSource(uploadSize), facts(uploadSize)), 'an upload over a trickle');
    let elapsed = Date.now() - started;
    assertBoundHit(upload, { endpoint: slow, operation: `uploading ${key}`, bound: 'transfer', ms: uploadDeadline });
    assert.ok(elapsed >= uploadDeadline && elapsed < SLACK * (uploadDeadline + timeouts.callMs), `at the transfer deadline: ${elapsed} ms`);

    const downloadSize = 3 * MiB;
    const downloadDeadline = 3000; // max(2 s, 3 MiB at 1 MiB/s)
    const stored = newKey();
    await s3.putObject(bucketName, stored, Buffer.alloc(downloadSize, 1), downloadSize);
    started = Date.now();
    const archive = await bucket.open(stored);
    const download = await rejection(
      (async () => {
        for await (const _ of archive.stream);
      })(),
      'a download over a trickle',
    );
    elapsed = Date.now() - started;
    assertBoundHit(download, { endpoint: slow, operation: `downloading ${stored}`, bound: 'transfer', ms: downloadDeadline });
    assert.ok(elapsed >= downloadDeadline && elapsed < SLACK * (downloadDeadline + 2 * timeouts.callMs), `at the transfer deadline: ${elapsed} ms`);
  });

  test('abortInFlight ends an upload under way at once, with the reason given; the bucket works afterwards', async (t) => {
    const bucketName = await createTestBucket(rgw);
    const slow = (await FaultProxy.startIn(t, rgw.endpoint, { mode: 'slow', bytesPerSecond: MiB })).url;
    const bucket = new BackupBucket(destination(rgw, slow, bucketName), { partBytes: 5 * MiB, timeouts: BOUNDS });
    const key = newKey();
    const total = 12 * MiB;
    const reason = new Error('the job passed its deadline');
    let abortedAt = 0;
    let armed = false;
    const source = archiveSource(total, () => {
      if (armed) return;
      armed = true;
      // The source is read once the multipart upload is initiated; half a second later the
      // first 5 MiB part is on its way at 1 MiB/s: no bound would end the upload this soon.
      setTimeout(() => {
        abortedAt = Date.now();
        bucket.abortInFlight(reason);
      }, 500);
    });

    const err = await rejection(bucket.upload(key, source, facts(total)), 'an aborted upload');
    const elapsed = Date.now() - abortedAt;
    assert.ok(abortedAt > 0, 'aborted while under way');
    assert.equal(err, reason, 'rejects with the reason itself');
    // Prompt: the identity above shows no bound ended it (the transfer deadline is 48 s away); the margin is for a loaded machine.
    assert.ok(elapsed < PROMPT_MS, `at once: ${elapsed} ms`);
    assert.ok(source.destroyed, 'the source is released');

    // New connections: listing and cleaning up work.
    assert.deepEqual((await bucket.page({ limit: 50 })).objects, []);
    await bucket.discard(key);
    assert.deepEqual(await incompleteUploads(s3, bucketName), []);
  });

  test('abortInFlight ends a pending listing and an open download stream with the reason; later calls work', async (t) => {
    const bucketName = await createTestBucket(rgw);
    const key = newKey();
    await s3.putObject(bucketName, key, Buffer.alloc(32 * MiB, 2), 32 * MiB);
    const proxy = await FaultProxy.startIn(t, rgw.endpoint);
    // Bounds far away: only the abort can end these calls.
    const bucket = new BackupBucket(destination(rgw, proxy.url, bucketName), { timeouts: { ...BOUNDS, idleMs: 60_000, callMs: 60_000 } });

    const archive = await bucket.open(key);
    let read = 0;
    const reading = rejection(
      (async () => {
        for await (const chunk of archive.stream) {
          read += (chunk as Buffer).length;
          if (read >= MiB) proxy.set({ mode: 'blackhole' });
        }
      })(),
      'reading an aborted download',
    );
    while (read < MiB) await new Promise((resolve) => setTimeout(resolve, 20));
    // The abort must find the listing pending: its request sent and swallowed by the silent link. A request goes
    // out once its connection is there, within the connect bound.
    const swallowedBefore = proxy.stats().up.swallowed;
    const listing = rejection(bucket.page({ limit: 50 }), 'an aborted listing');
    await waitFor("the listing's request to reach the silent link", async () => (proxy.stats().up.swallowed > swallowedBefore ? true : undefined), SLACK * connectMs, 20);

    const reason = new Error('SIGTERM: the worker is stopping');
    const abortedAt = Date.now();
    bucket.abortInFlight(reason);
    assert.equal(await listing, reason, 'the listing rejects with the reason itself');
    assert.equal(await reading, reason, 'the download stream is destroyed with the reason itself');
    const elapsed = Date.now() - abortedAt;
    assert.ok(elapsed < PROMPT_MS, `at once: ${elapsed} ms`);
    assert.ok(archive.stream.destroyed);

    proxy.set({ mode: 'pass' });
    assert.deepEqual((await bucket.page({ limit: 50 })).objects.map((object) => object.key), [key], 'the bucket works afterwards, on new connections');
  });

  test('a TLS endpoint that accepts TCP but never completes the handshake fails at the connect bound', async (t) => {
    // The proxy completes TCP and swallows the ClientHello: the connect bound covers TCP and TLS.
    const proxy = await FaultProxy.startIn(t, `https://127.0.0.1:${new URL(rgw.endpoint).port}`, { mode: 'blackhole' });
    const bucket = new BackupBucket(destination(rgw, proxy.url, 'no-such-bucket'), { timeouts: BOUNDS });
    assert.match(proxy.url, /^https:/);

    const started = Date.now();
    const err = await rejection(bucket.page({ limit: 50 }), 'a listing over a handshake that never completes');
    const elapsed = Date.now() - started;
    assertBoundHit(err, { endpoint: proxy.url, operation: 'listing backups', bound: 'connect', ms: connectMs });
    assert.match((err as Error).message, /^no connection to S3 endpoint https:\/\/127\.0\.0\.1:\d+ within 1 s while listing backups \(CHANGO_S3_CONNECT_TIMEOUT_MS\)/);
    assert.ok(elapsed >= connectMs && elapsed < SLACK * connectMs, `at the connect bound: ${elapsed} ms`);
  });

  test('calls share a keep-alive connection; one idle in the pool past the idle bound is closed quietly and replaced', async () => {
    const bucketName = await createTestBucket(rgw);
    const bucket = new BackupBucket(destination(rgw, rgw.endpoint, bucketName), { timeouts: BOUNDS });
    await bucket.page({ limit: 50 });
    await bucket.page({ limit: 50 });
    assert.equal(await bucket.readSidecar(newKey()), undefined, 'no sidecar there');
    assert.equal(bucket.agent.connectionsOpened, 1, 'one connection for three calls');

    // Idle in the pool past the idle bound: the agent closes it (polled, so this ends as soon as it is gone).
    const held = () => [...Object.values(bucket.agent.freeSockets), ...Object.values(bucket.agent.sockets)].flatMap((list) => list ?? []);
    await waitFor('the idle pooled connection to be closed', async () => (held().length === 0 ? true : undefined), SLACK * idleMs, 20);
    assert.deepEqual((await bucket.page({ limit: 50 })).objects, []);
    assert.equal(bucket.agent.connectionsOpened, 2, 'the idle one was closed, a new one opened');
  });
});
