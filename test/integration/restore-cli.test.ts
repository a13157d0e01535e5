import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { buffer as readAll } from 'node:stream/consumers';
import type * as Minio from 'minio';
import { Queue } from 'bullmq';
import { BACKUP_SCHEDULER_ID, parseBackupKey, QUEUES, type BackupResult, type BackupStatus, type VerificationRecord } from '@chango/contracts';
import type { Manifest } from '@chango/archive';
import { newRootSecret, SuiteScope, tempDir, treeState, waitFor, writeSecretFile } from '../../testkit/fixtures.js';
import { craft } from '../../testkit/crafted-archive.js';
import { leaseBound, leaseMsOf, SAFETY_NET_MS, withinLoad, withWork } from '../../testkit/liveness.js';
import { RunningProcess, WORKER, runCli } from '../../testkit/processes.js';
import { deleteRedisPrefix, REDIS_URL, Stack } from '../../testkit/stack.js';
import { createTestBucket, minioClient, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';

const run = promisify(execFile);
/** The schedule the drill test turns on: a tick every 2 s. */
const EVERY_2_SECONDS = '*/2 * * * * *';
const TICK_MS = 2_000;

describe('restore, verify, list and inspect from the CLI (real S3, real RocksDB)', () => {
  const scope = new SuiteScope();
  let rgw: RgwCluster;
  let stack: Stack;
  let s3: Minio.Client;
  let bucket: string;
  let s3Env: Record<string, string>;
  let sourceStats: unknown;

  const backupNow = async () => {
    const response = await stack.request<BackupResult>('POST', '/admin/api/backup/run');
    assert.equal(response.status, 200, JSON.stringify(response.body));
    return response.body;
  };
  const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { ...s3Env, CHANGO_ROOT_SECRET_FILE: stack.secretFile, ...env });
  const statsOf = async (dataDir: string) => {
    const stats = await runCli(['state', 'stats', '--json'], { CHANGO_DATA_DIR: dataDir, CHANGO_ROOT_SECRET_FILE: stack.secretFile });
    assert.equal(stats.code, 0, stats.stderr);
    return JSON.parse(stats.stdout) as unknown;
  };

  before(async () => {
    rgw = await startRgw();
    scope.after(() => rgw.stop());
    s3 = minioClient(rgw);
    stack = await Stack.start(scope, { users: 5, components: 300, env: { CHANGO_BACKUP_ATTEMPTS: '1', CHANGO_VERIFY_SCHEDULED: 'true' } });
    bucket = await createTestBucket(rgw);
    const put = await stack.request('PUT', '/admin/api/backup/config', {
      body: { endpoint: rgw.endpoint, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    s3Env = {
      CHANGO_S3_ENDPOINT: rgw.endpoint,
      CHANGO_S3_REGION: rgw.region,
      CHANGO_S3_BUCKET: bucket,
      CHANGO_S3_PREFIX: 'prod/',
      CHANGO_S3_ACCESS_KEY: rgw.accessKey,
      CHANGO_S3_SECRET_KEY: rgw.secretKey,
    };
    sourceStats = await statsOf(stack.dataDir);
  });
  after(() => scope.run());

  test('list shows backups newest first; inspect prints the manifest without the secret', async () => {
    const first = await backupNow();
    // Keys carry the time to the second: start the second backup in a later second than the first key's, as two real
    // backups would be. Often already so (a backup takes a while); else the clock gets there within a second.
    const firstSecond = parseBackupKey('prod/', first.key)?.timestamp.getTime();
    assert.ok(firstSecond !== undefined, `a backup key: ${first.key}`);
    await waitFor("a second later than the first backup's key", async () => (Date.now() >= firstSecond + 1_000 ? true : undefined), withinLoad(1_000), 10);
    const second = await backupNow();
    const listed = await cli(['list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const keys = (JSON.parse(listed.stdout) as { objects: { key: string; complete: boolean }[] }).objects.map((o) => o.key);
    assert.ok(keys.indexOf(second.key) < keys.indexOf(first.key) && keys.indexOf(first.key) >= 0, keys.join(' '));
    const table = await cli(['list']);
    assert.match(table.stdout, new RegExp(`${second.key}\\s+${second.size}\\s+\\S+\\s+complete`));
    const latest = await cli(['list', '--latest']);
    assert.deepEqual(latest.stdout.split('\n').filter((line) => line.startsWith('prod/')).map((line) => line.split(/\s+/)[0]), [second.key], 'only the newest complete backup');
    const one = JSON.parse((await cli(['list', '--limit', '1', '--json'])).stdout) as { objects: { key: string }[] };
    assert.deepEqual(one.objects.map((o) => o.key), [second.key]);
    const badLimit = await cli(['list', '--limit', '0']);
    assert.notEqual(badLimit.code, 0);
    assert.match(badLimit.stderr, /--limit.*whole number of 1 or more/);

    const inspected = await cli(['inspect', '--key', second.key, '--json']);
    assert.equal(inspected.code, 0, inspected.stderr);
    const manifest = JSON.parse(inspected.stdout) as Manifest;
    assert.equal(manifest.backupId, second.backupId);
    assert.deepEqual({ kms: manifest.stores.kms.records, iam: manifest.stores.iam.records, metadata: manifest.stores.metadata.records }, second.records);
    const human = await cli(['inspect', '--key', second.key]);
    assert.match(human.stdout, new RegExp(`backup id\\s+${second.backupId}`));
    assert.match(human.stdout, /iam\s+\d+ records, \d+ files/);

    for (const output of [listed.stdout, table.stdout, inspected.stdout, human.stdout, listed.stderr]) assert.ok(!output.includes(rgw.secretKey));
  });

  test('missing S3 settings and a missing choice of backup are named', async () => {
    const noBucket = await runCli(['list'], { ...s3Env, CHANGO_S3_BUCKET: '' });
    assert.equal(noBucket.code, 1);
    assert.match(noBucket.stderr, /--bucket \/ CHANGO_S3_BUCKET is required/);
    const noChoice = await cli(['restore', '--data-dir', '/tmp/nowhere']);
    assert.equal(noChoice.code, 1);
    assert.match(noChoice.stderr, /exactly one of --key KEY, --latest or --file FILE/);
    const unknownKey = await cli(['inspect', '--key', 'prod/chango-20200101T000000Z-00000000-0000-4000-8000-000000000000.tar.gz']);
    assert.equal(unknownKey.code, 1);
    assert.match(unknownKey.stderr, /no such object/);
  });

  test('restore round trip: into an empty folder, the worker starts on it and stats equal the source; --owner chowns', async (t) => {
    await backupNow();
    const target = join(await tempDir(t, 'chango-restored'), 'data');
    const restored = await cli(['restore', '--data-dir', target, '--latest', '--owner', 'nobody:nogroup']);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, /the root secret opens it/);
    assert.deepEqual((await readdir(target)).sort(), ['iam', 'kms', 'metadata']);
    const { stdout: nobodyUid } = await run('id', ['-u', 'nobody']);
    assert.equal((await stat(join(target, 'iam'))).uid, Number(nobodyUid.trim()));

    assert.deepEqual(await statsOf(target), sourceStats);
    const worker = RunningProcess.start(WORKER, { ...stack.env, CHANGO_DATA_DIR: target, CHANGO_QUEUE_PREFIX: `${stack.prefix}-restored`, CHANGO_NODE_ID: 'restored' });
    t.after(() => worker.stop());
    await worker.waitForOutput('worker ready');
    await worker.stop();
  });

  test('with another root secret the restore refuses and the stores there stay as they were', async (t) => {
    const dir = await tempDir(t, 'chango-restored');
    const target = join(dir, 'data');
    assert.equal((await cli(['restore', '--data-dir', target, '--latest'])).code, 0);
    const before = await treeState(target);
    const otherSecret = await writeSecretFile(dir, newRootSecret(), 'other-secret');
    const refused = await cli(['restore', '--data-dir', target, '--latest'], { CHANGO_ROOT_SECRET_FILE: otherSecret });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /root secret/i);
    assert.deepEqual(await treeState(target), before);
    assert.deepEqual((await readdir(target)).sort(), ['iam', 'kms', 'metadata'], 'no staging folder left behind');
  });

  test('restore refuses while a worker holds the stores', async () => {
    const before = await treeState(join(stack.dataDir, 'kms'));
    const refused = await cli(['restore', '--data-dir', stack.dataDir, '--latest']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /in use|held|lock/i);
    assert.deepEqual(await treeState(join(stack.dataDir, 'kms')), before);
  });

  test('a flipped byte in the object is refused by restore and verify; nothing is written', async (t) => {
    const backup = await backupNow();
    const original = await readAll(await s3.getObject(bucket, backup.key));
    const flipped = Buffer.from(original);
    const at = Math.floor(flipped.length / 2);
    flipped[at] = (flipped[at] ?? 0) ^ 0xff;
    // Same key and same metadata: only the bytes differ, as after bit rot or tampering at rest.
    await s3.putObject(bucket, backup.key, flipped, flipped.length, { 'chango-sha256': backup.sha256 });

    const target = join(await tempDir(t, 'chango-restored'), 'data');
    const refused = await cli(['restore', '--data-dir', target, '--key', backup.key]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /the archive.s SHA-256 is [0-9a-f]{64} .* but [0-9a-f]{64} was expected/);
    assert.deepEqual(await listOrEmpty(target), []);
    const verify = await cli(['verify', '--key', backup.key]);
    assert.equal(verify.code, 1);
    assert.match(verify.stderr, /the archive.s SHA-256 is [0-9a-f]{64} .* but [0-9a-f]{64} was expected/);

    // The worker's drill, asked through the api, fails the same way and says so everywhere an operator looks.
    const asked = await stack.request<{ jobId: string; statusUrl: string }>('POST', '/admin/api/backup/verify', { body: { key: backup.key } });
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    // A drill's length is its own work (download, restore, open): no interval to derive from, the safety net bounds it.
    const job = await waitFor('the drill to fail', async () => {
      const view = (await stack.request<{ state: string; failure: { message: string } | null }>('GET', asked.body.statusUrl)).body;
      return view.state === 'failed' ? view : undefined;
    }, SAFETY_NET_MS);
    assert.match(job.failure?.message ?? '', new RegExp(`restore drill of ${backup.key} failed: the archive.s SHA-256 is`));
    const record = JSON.parse((await readAll(await s3.getObject(bucket, `${backup.key}.verify.json`))).toString('utf8')) as VerificationRecord;
    assert.equal(record.ok, false);
    const status = (await stack.request<BackupStatus>('GET', '/admin/api/backup/status')).body;
    assert.equal(status.lastVerify?.key, backup.key);
    assert.equal(status.lastVerify?.ok, false);
    assert.match((await stack.request<string>('GET', '/metrics', { token: null })).body, /^chango_backup_last_verify_success 0$/m);
    assert.match((await cli(['list'])).stdout, new RegExp(`${backup.key}.*DRILL FAILED`));
  });

  test('POST /admin/api/backup/verify drills the newest backup; a key that is not a backup is a 400 naming it', async () => {
    const backup = await backupNow();
    const bad = await stack.request<{ fields: { field: string }[] }>('POST', '/admin/api/backup/verify', { body: { key: '../etc/passwd' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.fields[0]?.field, 'key');
    const viewer = await stack.request('POST', '/admin/api/backup/verify', { token: stack.viewerToken });
    assert.equal(viewer.status, 403);
    const asked = await stack.request<{ statusUrl: string }>('POST', '/admin/api/backup/verify');
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    const job = await waitFor('the drill to pass', async () => {
      const view = (await stack.request<{ state: string; result: VerificationRecord | null }>('GET', asked.body.statusUrl)).body;
      return view.state === 'completed' || view.state === 'failed' ? view : undefined;
    }, SAFETY_NET_MS);
    assert.equal(job.state, 'completed');
    assert.equal(job.result?.key, backup.key);
    assert.deepEqual(job.result?.records, backup.records);

    // A key with nothing there: the job fails saying so, and no drill record is written for it.
    const missing = 'prod/chango-20200101T000000Z-00000000-0000-4000-8000-00000000abcd.tar.gz';
    const none = await stack.request<{ statusUrl: string }>('POST', '/admin/api/backup/verify', { body: { key: missing } });
    const failed = await waitFor('the drill of a missing key to fail', async () => {
      const view = (await stack.request<{ state: string; failure: { message: string } | null }>('GET', none.body.statusUrl)).body;
      return view.state === 'failed' ? view : undefined;
    }, SAFETY_NET_MS);
    assert.match(failed.failure?.message ?? '', /no such object/);
    await assert.rejects(s3.statObject(bucket, `${missing}.verify.json`));
  });

  test('a sidecar that disagrees with the object is refused, and nothing is restored', async (t) => {
    const backup = await backupNow();
    await s3.putObject(bucket, `${backup.key}.sha256`, Buffer.from(`${'0'.repeat(64)}  ${basename(backup.key)}\n`));
    const target = join(await tempDir(t, 'chango-restored'), 'data');
    const refused = await cli(['restore', '--data-dir', target, '--key', backup.key]);
    assert.equal(refused.code, 1);
    // The archive was streamed into its upload: its checksum is in the sidecar only, so the bytes read are what disagree with it.
    assert.match(refused.stderr, new RegExp(`the archive's SHA-256 is ${backup.sha256} \\(${backup.size} bytes read\\), but 0{64} was expected.*Nothing was restored`));
    assert.deepEqual(await listOrEmpty(target), []);
  });

  test('a downloaded file restores with --file, checked against the .sha256 beside it', async (t) => {
    const backup = await backupNow();
    const dir = await tempDir(t, 'chango-download');
    const file = join(dir, basename(backup.key));
    await s3.fGetObject(bucket, backup.key, file);
    await writeFile(`${file}.sha256`, await readAll(await s3.getObject(bucket, `${backup.key}.sha256`)));
    const target = join(dir, 'data');
    const restored = await cli(['restore', '--data-dir', target, '--file', file]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, new RegExp(`archive sha256 ${backup.sha256} \\(equal to the sidecar\\)`));
    assert.deepEqual(await statsOf(target), sourceStats);

    await writeFile(`${file}.sha256`, `${'1'.repeat(64)}  ${basename(file)}\n`);
    const other = join(dir, 'other');
    await mkdir(other);
    const refused = await cli(['restore', '--data-dir', other, '--file', file]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /but 1{64} was expected/);
  });

  test('an archive with ../evil, an absolute path or a symlink is refused by name; nothing lands outside or over the stores', async (t) => {
    const backup = await backupNow();
    const manifest = Buffer.from((await cli(['inspect', '--key', backup.key, '--json'])).stdout);
    const box = await tempDir(t, 'chango-evil');
    const target = join(box, 'data');
    assert.equal((await cli(['restore', '--data-dir', target, '--latest'])).code, 0);
    const before = await treeState(box);
    const evil = join(box, 'evil');
    const cases = [
      { entry: { header: { name: '../evil', type: 'file' as const }, content: Buffer.from('x') }, named: '../evil' },
      { entry: { header: { name: evil, type: 'file' as const }, content: Buffer.from('x') }, named: evil },
      { entry: { header: { name: 'kms/LINK', type: 'symlink' as const, linkname: '/etc/passwd' } }, named: 'kms/LINK' },
    ];
    for (const { entry, named } of cases) {
      const file = join(box, 'evil.tar.gz');
      await writeFile(file, await craft([{ header: { name: 'manifest.json', type: 'file' }, content: manifest }, { header: { name: 'kms/', type: 'directory' } }, entry]));
      const refused = await cli(['restore', '--data-dir', target, '--file', file]);
      assert.equal(refused.code, 1, `${named}: ${refused.stdout}`);
      assert.ok(refused.stderr.includes(named), `the message names ${named}: ${refused.stderr}`);
      assert.match(refused.stderr, /do not restore it/);
      await rm(file);
      assert.deepEqual(await treeState(box), before, `nothing changed after ${named}`);
      assert.deepEqual(await listOrEmpty(evil), [], 'nothing written at the evil path');
    }
  });

  test('verify --latest restores into a temporary folder and reports counts equal to the manifest', async () => {
    const backup = await backupNow();
    const verified = await cli(['verify', '--latest', '--json']);
    assert.equal(verified.code, 0, verified.stderr);
    const report = JSON.parse(verified.stdout) as { ok: boolean; sha256: string; storeCheck: { records: BackupResult['records'] } };
    assert.equal(report.ok, true);
    assert.equal(report.sha256, backup.sha256);
    assert.deepEqual(report.storeCheck.records, backup.records);
    const noSecret = await runCli(['verify', '--latest'], s3Env);
    assert.equal(noSecret.code, 1);
    assert.match(noSecret.stderr, /root secret/i);
  });

  test('after a scheduled backup the worker runs the drill: <key>.verify.json, status and metrics carry it', async () => {
    const put = await stack.request('PUT', '/admin/api/backup/config', {
      body: { endpoint: rgw.endpoint, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey, schedule: EVERY_2_SECONDS },
    });
    assert.equal(put.status, 200);
    const since = Date.now();
    // The next tick is due within one cron period; the backup and the drill after it are work of their own.
    const status = await waitFor('a restore drill after a scheduled backup', async () => {
      const now = (await stack.request<BackupStatus>('GET', '/admin/api/backup/status')).body;
      return now.lastVerify && Date.parse(now.lastVerify.verifiedAt) > since ? now : undefined;
    }, withWork(TICK_MS), 300);
    const off = await stack.request('PUT', '/admin/api/backup/config', {
      body: { endpoint: rgw.endpoint, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, schedule: null },
    });
    assert.equal(off.status, 200);
    const drill = status.lastVerify as VerificationRecord;
    assert.equal(drill.ok, true, drill.error ?? '');
    const record = JSON.parse((await readAll(await s3.getObject(bucket, `${drill.key}.verify.json`))).toString('utf8')) as VerificationRecord;
    assert.equal(record.ok, true);
    const jobs = (await stack.request<{ jobs: { result: BackupResult | null }[] }>('GET', '/admin/api/backup/jobs?limit=500')).body.jobs;
    const drilled = jobs.find((j) => j.result?.key === drill.key)?.result;
    assert.ok(drilled, `the drilled key ${drill.key} is a backup of this stack`);
    assert.deepEqual(record.records, drilled.records);
    const metrics = await stack.request<string>('GET', '/metrics', { token: null });
    assert.match(metrics.body, /^chango_backup_last_verify_success 1$/m);
    const listed = await cli(['list']);
    assert.match(listed.stdout, new RegExp(`${drill.key}.*verified`));
  });

  test('a master restored from a backup taken with a schedule resumes that schedule on an empty Redis', async (t) => {
    // The drilled backups above were taken while the schedule was on: their metadata store holds it.
    const withSchedule = (await stack.request<{ jobs: { result: BackupResult | null }[] }>('GET', '/admin/api/backup/jobs?limit=500')).body.jobs
      .map((j) => j.result)
      .find((r): r is BackupResult => r?.trigger === 'schedule');
    assert.ok(withSchedule, 'a scheduled backup exists');
    const target = join(await tempDir(t, 'chango-restored'), 'data');
    assert.equal((await cli(['restore', '--data-dir', target, '--key', withSchedule.key])).code, 0);

    const prefix = `${stack.prefix}-restored-master`;
    const worker = RunningProcess.start(WORKER, { ...stack.env, CHANGO_DATA_DIR: target, CHANGO_QUEUE_PREFIX: prefix, CHANGO_NODE_ID: 'restored-master' });
    const queue = new Queue(QUEUES.backup, { connection: { url: REDIS_URL }, prefix });
    t.after(async () => {
      await worker.stop();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await deleteRedisPrefix(prefix);
    });
    await worker.waitForOutput('worker ready');
    // Alone on an empty Redis the worker leads at once and sets the schedule from its restored metadata store; had
    // that missed, the next lease renewal sets it. Either way it is there within the lease bound (4/3 of the lease).
    const scheduler = await waitFor(
      'the schedule in the new Redis prefix',
      async () => (await queue.getJobScheduler(BACKUP_SCHEDULER_ID)) ?? undefined,
      withinLoad(leaseBound(leaseMsOf(stack.env))),
    );
    assert.equal(scheduler.pattern, EVERY_2_SECONDS);
    assert.equal(scheduler.tz, 'UTC');
  });
});


async function listOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
