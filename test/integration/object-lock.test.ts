import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type * as Minio from 'minio';
import { makeBackupKey, resolveDestination, sidecarKey, verifyRecordKey, type BackupObject, type BackupResult, type ObjectLock } from '@chango/contracts';
import { BackupBucket, UPLOAD_PART_BYTES } from '@chango/s3';
import { awsS3api, awsS3apiJson, listObjectVersions } from '../../testkit/aws-cli.js';
import { SuiteScope, waitFor } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS, TIMER_SLACK_MS } from '../../testkit/liveness.js';
import { createTestBucket, minioClient, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';
import { Stack } from '../../testkit/stack.js';
import { writeSyntheticBackups } from '../../testkit/synthetic-backups.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const LOCK: ObjectLock = { mode: 'COMPLIANCE', days: 1 };
/**
 * How long the planted backups of the last retention test are locked for. S3 refuses a
 * retain-until date in the past, so an expired lock is a short one waited out: the wait is
 * this date passing, not how fast anything runs; the margin only has to cover one PUT.
 */
const SHORT_LOCK_MS = 10_000;

interface Retention {
  Retention: { Mode: string; RetainUntilDate: string };
}

/** A loopback port nothing listens on: connecting is refused at once. */
async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

describe('S3 Object Lock at the destination (Ceph RGW, awscli reading back)', () => {
  const scope = new SuiteScope();
  let rgw: RgwCluster;
  let stack: Stack;
  let s3: Minio.Client;
  let locked: string;
  let plain: string;
  const made: BackupResult[] = [];

  const config = (bucket: string, extra: Record<string, unknown> = {}) => ({
    endpoint: rgw.endpoint,
    region: rgw.region,
    bucket,
    prefix: 'prod/',
    accessKey: rgw.accessKey,
    secretKey: rgw.secretKey,
    retention: { keepLast: 1 },
    objectLock: LOCK,
    ...extra,
  });
  const retentionOf = (key: string) => awsS3apiJson<Retention>(rgw, ['get-object-retention', '--bucket', locked, '--key', key]);
  const backupNow = async () => {
    const run = await stack.request<BackupResult>('POST', '/admin/api/backup/run');
    assert.equal(run.status, 200, JSON.stringify(run.body));
    made.push(run.body);
    return run.body;
  };
  /** Every version and delete marker of a backup's archive, sidecar and drill record. */
  const versionsOf = async (key: string) => {
    const listed = await listObjectVersions(rgw, locked, key);
    return { versions: (listed.Versions ?? []).map((v) => v.Key).sort(), markers: (listed.DeleteMarkers ?? []).map((m) => m.Key).sort() };
  };

  before(async () => {
    rgw = await startRgw();
    scope.after(() => rgw.stop());
    s3 = minioClient(rgw);
    // State enough for an archive over one part: the archive is a multipart upload, as real ones are (RGW ignores lock headers there).
    stack = await Stack.start(scope, { users: 2, components: 4000, env: { CHANGO_BACKUP_ATTEMPTS: '1' } });
    locked = await createTestBucket(rgw, { objectLock: true });
    plain = await createTestBucket(rgw);
  });
  after(() => scope.run());

  test('a bucket without Object Lock is refused with a 400 naming objectLock, in words saying what to do; nothing is saved', async () => {
    const refused = await stack.request<{ error: string; message: string; fields: { field: string; message: string }[] }>('PUT', '/admin/api/backup/config', { body: config(plain) });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'invalid_config');
    assert.deepEqual(refused.body.fields.map((f) => f.field), ['objectLock']);
    const words = refused.body.fields[0]?.message ?? '';
    assert.ok(words.includes(`bucket "${plain}" at ${rgw.endpoint} does not have Object Lock enabled`), words);
    assert.match(words, /Create a bucket with Object Lock enabled .*or set objectLock to null/);
    assert.equal((await stack.request('GET', '/admin/api/backup/config')).status, 404, 'nothing was saved');
  });

  test('an endpoint that cannot be reached during the check is a 502 naming it; nothing is saved', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const refused = await stack.request<{ error: string; message: string }>('PUT', '/admin/api/backup/config', { body: { ...config(locked), endpoint } });
    assert.equal(refused.status, 502, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 's3_unreachable');
    assert.ok(refused.body.message.includes(`could not check that bucket "${locked}" at ${endpoint} has Object Lock enabled, so nothing was saved`), refused.body.message);
    assert.match(refused.body.message, /connection refused/);
    assert.equal((await stack.request('GET', '/admin/api/backup/config')).status, 404, 'nothing was saved');
  });

  test('a COMPLIANCE backup: archive, sidecar and drill record are retained for the configured days, and deleting the locked version is refused', async () => {
    const saved = await stack.request<{ objectLock: ObjectLock }>('PUT', '/admin/api/backup/config', { body: config(locked) });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    assert.deepEqual(saved.body.objectLock, LOCK);
    assert.deepEqual((await stack.request<{ objectLock: ObjectLock }>('GET', '/admin/api/backup/config')).body.objectLock, LOCK);

    const startedAt = Date.now();
    const backup = await backupNow();
    const finishedAt = Date.now();
    assert.equal(backup.retentionKeptLocked, 0);
    assert.ok(backup.size > UPLOAD_PART_BYTES, `the archive (${backup.size} bytes) was uploaded in parts`);
    for (const key of [backup.key, backup.sidecarKey]) {
      const { Retention } = await retentionOf(key);
      assert.equal(Retention.Mode, 'COMPLIANCE', key);
      const until = Date.parse(Retention.RetainUntilDate);
      assert.ok(until >= startedAt + DAY_MS - TIMER_SLACK_MS && until <= finishedAt + DAY_MS + TIMER_SLACK_MS, `${key} is retained until ${Retention.RetainUntilDate}, about a day after the backup`);
    }

    // The restore drill downloads it from the versioned bucket and writes its record, locked too.
    const drillAskedAt = Date.now();
    const drill = await stack.request<{ statusUrl: string }>('POST', '/admin/api/backup/verify', { body: { key: backup.key } });
    assert.equal(drill.status, 202, JSON.stringify(drill.body));
    const drilled = await waitFor('the drill', async () => {
      const job = await stack.request<{ state: string; result?: { ok: boolean } }>('GET', drill.body.statusUrl);
      return job.body.state === 'completed' || job.body.state === 'failed' ? job.body : undefined;
    });
    assert.equal(drilled.state, 'completed', JSON.stringify(drilled));
    const record = await retentionOf(verifyRecordKey(backup.key));
    assert.equal(record.Retention.Mode, 'COMPLIANCE');
    assert.ok(Date.parse(record.Retention.RetainUntilDate) >= drillAskedAt + DAY_MS - TIMER_SLACK_MS, record.Retention.RetainUntilDate);

    // What an attacker with the backup's own credentials would try: delete the archive's version.
    const listed = await listObjectVersions(rgw, locked, backup.key);
    const version = listed.Versions?.find((v) => v.Key === backup.key)?.VersionId;
    assert.ok(version, 'the archive has a version');
    // `--version-id=…` in one word: RGW's version ids may begin with '-', which argparse would take for a flag.
    const deletion = await awsS3api(rgw, ['delete-object', '--bucket', locked, '--key', backup.key, `--version-id=${version}`]);
    assert.notEqual(deletion.code, 0, 'deleting a locked version is refused');
    assert.match(deletion.stderr, /AccessDenied/);
    assert.equal((await retentionOf(backup.key)).Retention.Mode, 'COMPLIANCE', 'and the archive is still there');

    // Listing a versioned bucket shows the backup, complete, with its drill.
    const objects = await stack.request<{ objects: BackupObject[] }>('GET', '/admin/api/backup/objects');
    const shown = objects.body.objects.find((o) => o.key === backup.key);
    assert.equal(shown?.complete, true, JSON.stringify(objects.body));
    assert.equal(shown?.verify?.ok, true);
  });

  test('retention with keepLast 1 deletes nothing locked and says so: kept, reason locked (by the lock\'s date, and by the destination refusing)', async () => {
    // Old by their keys (2020), so retention's own bound says their lock has passed: the destination refuses, and that counts as locked too.
    const refusing = await writeSyntheticBackups(s3, locked, { prefix: 'prod/', count: 2, newest: new Date('2020-01-02T03:00:00Z'), spacingMs: DAY_MS, objectLock: { mode: 'COMPLIANCE', forMs: DAY_MS } });
    // The first backup passed a drill: kept as the newest that did. The planted two are refused.
    const second = await backupNow();
    assert.deepEqual(second.retentionDeleted, []);
    assert.equal(second.retentionKeptLocked, 2);
    // Now the second backup, locked for a day from today, is kept without even being tried.
    const third = await backupNow();
    assert.deepEqual(third.retentionDeleted, []);
    assert.equal(third.retentionKeptLocked, 3);
    assert.match(stack.worker.stdout, /"keptLocked":3,"reason":"locked"/);
    assert.match(stack.worker.stdout, /retention: kept backup\(s\) past the rule: S3 Object Lock still holds them/);
    assert.match((await stack.request<string>('GET', '/metrics', { token: null })).body, /^chango_backup_retention_kept_locked 3$/m);

    for (const key of [...refusing, ...made.map((backup) => backup.key)]) {
      const { versions, markers } = await versionsOf(key);
      assert.ok(versions.includes(key) && versions.includes(sidecarKey(key)), `${key} and its sidecar are all there: ${versions.join(', ')}`);
      assert.deepEqual(markers, [], `nothing of ${key} is hidden`);
    }
  });

  test('once their lock has passed, retention deletes every version for real: list-object-versions shows none left', async () => {
    const expiring = await writeSyntheticBackups(s3, locked, { prefix: 'prod/', count: 2, newest: new Date('2019-01-02T03:00:00Z'), spacingMs: DAY_MS, verifiedEvery: 1, objectLock: { mode: 'COMPLIANCE', forMs: SHORT_LOCK_MS } });
    const lockedUntil = Date.now() + SHORT_LOCK_MS;
    const { versions } = await versionsOf(expiring[0] as string);
    assert.equal(versions.length, 3, 'archive, sidecar and drill record were written');
    // Wait for the date to pass (every planted retain-until date is before lockedUntil).
    await waitFor('the short locks to pass', async () => (Date.now() > lockedUntil + TIMER_SLACK_MS ? true : undefined), SHORT_LOCK_MS + SAFETY_NET_MS, 250);

    const fourth = await backupNow();
    assert.deepEqual([...fourth.retentionDeleted].sort(), [...expiring].sort());
    assert.equal(fourth.retentionKeptLocked, 4, 'the two planted ones still locked for a day, the second and third backups');
    for (const key of expiring) {
      assert.deepEqual(await versionsOf(key), { versions: [], markers: [] }, `no version and no delete marker of ${key} is left`);
      assert.match(stack.worker.stdout, new RegExp(`"key":"${key}".*retention: deleted backup`));
    }
  });

  test("a failed attempt's leftover: an unlocked archive is deleted for real, a locked one is hidden behind a delete marker and its version stays", async () => {
    const { secretKey, ...update } = config(locked);
    const bucket = new BackupBucket(resolveDestination(update, secretKey));
    const unlockedKey = makeBackupKey('prod/', new Date(), randomUUID());
    const lockedKey = makeBackupKey('prod/', new Date(), randomUUID());
    await s3.putObject(locked, unlockedKey, Buffer.from('an upload that failed before it was locked'));
    const written = await s3.putObject(locked, lockedKey, Buffer.from('an upload locked before its commit failed'));
    await s3.putObjectRetention(locked, lockedKey, { mode: 'COMPLIANCE', retainUntilDate: new Date(Date.now() + DAY_MS).toISOString(), versionId: written.versionId ?? '' });

    assert.deepEqual(await bucket.discard(unlockedKey), { lockedVersionsLeft: [] });
    assert.deepEqual(await versionsOf(unlockedKey), { versions: [], markers: [] });

    assert.deepEqual(await bucket.discard(lockedKey), { lockedVersionsLeft: [lockedKey] });
    assert.deepEqual(await versionsOf(lockedKey), { versions: [lockedKey], markers: [lockedKey] }, 'the locked version stays, behind a delete marker');
    const current = await awsS3api(rgw, ['head-object', '--bucket', locked, '--key', lockedKey]);
    assert.notEqual(current.code, 0, 'the key itself is gone for readers');
    const objects = await stack.request<{ objects: BackupObject[] }>('GET', '/admin/api/backup/objects');
    assert.ok(!objects.body.objects.some((o) => o.key === lockedKey || o.key === unlockedKey), 'neither is listed');
  });

  test('no secret in anything the processes printed or the api answered', () => {
    assert.ok(!stack.transcript().includes(rgw.secretKey));
  });
});
