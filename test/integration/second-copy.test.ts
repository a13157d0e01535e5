import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { buffer as readAll } from 'node:stream/consumers';
import type * as Minio from 'minio';
import type { BackupResult, BackupStatus, CopyTargetStatus, VerificationRecord } from '@chango/contracts';
import { SuiteScope, tempDir, waitFor } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';
import { runCli } from '../../testkit/processes.js';
import { Stack } from '../../testkit/stack.js';
import { createTestBucket, minioClient, startRgw, type RgwCluster, type S3Target } from '../../testkit/local-rgw.js';

const run = promisify(execFile);
const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';


/** The `YYYY-MM` folder of a backup key (its time is in its name). */
function monthFolder(key: string): string {
  const stamp = /chango-(\d{4})(\d{2})\d{2}T/.exec(key);
  assert.ok(stamp, key);
  return `${stamp[1]}-${stamp[2]}`;
}

describe('a second copy of every backup, at another S3 or in a local directory (real RGW, two users)', () => {
  const scope = new SuiteScope();
  let rgw: RgwCluster;
  let stack: Stack;
  let primary: Minio.Client;
  let primaryBucket: string;
  let copyUser: S3Target;
  let copyClient: Minio.Client;
  let copyBucket: string;

  const destination = (copy: Record<string, unknown> | null) => ({
    endpoint: rgw.endpoint,
    region: rgw.region,
    bucket: primaryBucket,
    prefix: 'prod/',
    accessKey: rgw.accessKey,
    secretKey: rgw.secretKey,
    copy,
  });
  const s3Copy = (extra: Record<string, unknown> = {}) => ({
    type: 's3',
    endpoint: copyUser.endpoint,
    region: copyUser.region,
    bucket: copyBucket,
    prefix: 'copies/',
    accessKey: copyUser.accessKey,
    secretKey: copyUser.secretKey,
    ...extra,
  });
  const configure = async (copy: Record<string, unknown> | null) => {
    const put = await stack.request('PUT', '/admin/api/backup/config', { body: destination(copy) });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    return put.body as { copy: Record<string, unknown> | null };
  };
  const backupNow = async () => {
    const made = await stack.request<BackupResult>('POST', '/admin/api/backup/run');
    assert.equal(made.status, 200, JSON.stringify(made.body));
    return made.body;
  };
  /** The copy target's status once the copy of `key` has ended there, one way or the other: the copy is work of its own. */
  const copyEnded = (label: string, key: string) =>
    waitFor(`the copy of ${key} to ${label}`, async () => {
      const status = (await stack.request<BackupStatus>('GET', '/admin/api/backup/status')).body;
      const target = status.lastCopy.find((t: CopyTargetStatus) => t.destination === label);
      return target && (target.lastSuccess?.key === key || target.lastFailure?.key === key) ? { status, target } : undefined;
    }, SAFETY_NET_MS, 250);

  before(async () => {
    rgw = await startRgw();
    scope.after(() => rgw.stop());
    primary = minioClient(rgw);
    primaryBucket = await createTestBucket(rgw);
    // The copy belongs to another RGW user: its own credentials, its own bucket.
    const accessKey = Array.from(randomBytes(20), (b) => ALPHANUMERIC[b % ALPHANUMERIC.length]).join('');
    const secretKey = randomBytes(30).toString('base64').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 40);
    assert.ok(rgw.admin, 'the local RGW can create users');
    await rgw.admin(['user', 'create', '--uid', 'chango-copy', '--display-name', 'chango copy', '--access-key', accessKey, '--secret-key', secretKey]);
    copyUser = { endpoint: rgw.endpoint, region: rgw.region, accessKey, secretKey };
    copyClient = minioClient(copyUser);
    copyBucket = await createTestBucket(copyUser);
    stack = await Stack.start(scope, { users: 4, components: 120, env: { CHANGO_BACKUP_ATTEMPTS: '2', CHANGO_BACKUP_BACKOFF_MS: '300', CHANGO_VERIFY_SCHEDULED: 'false' } });
  });
  after(() => scope.run());

  test('at a second S3 target: byte-identical with a valid sidecar, its own retention, status and metrics name it; its secret never shows', async () => {
    const saved = await configure(s3Copy({ retention: { keepLast: 1 } }));
    assert.equal(saved.copy?.secretKeySet, true);
    assert.equal(saved.copy?.secretKey, undefined, 'the copy secret is never returned');
    const label = `${copyUser.endpoint}/${copyBucket}/copies/`;

    const first = await backupNow();
    const { target } = await copyEnded(label, first.key);
    assert.equal(target.lastFailure, null, JSON.stringify(target));
    const name = first.key.slice('prod/'.length);
    assert.equal(target.lastSuccess?.copyKey, `copies/${name}`);
    const [original, copied] = await Promise.all([readAll(await primary.getObject(primaryBucket, first.key)), readAll(await copyClient.getObject(copyBucket, `copies/${name}`))]);
    assert.ok(copied.equals(original), 'byte-identical');
    assert.equal((await readAll(await copyClient.getObject(copyBucket, `copies/${name}.sha256`))).toString(), `${first.sha256}  ${name}\n`);
    assert.equal((await copyClient.statObject(copyBucket, `copies/${name}`)).metaData['chango-sha256'], first.sha256);

    // A second backup: the copy's keepLast 1 removes the first copy there, the primary keeps both (its default keeps 30).
    await waitFor('a second later than the first key', async () => (Date.now() - Date.parse(first.startedAt) > 1_100 ? true : undefined), SAFETY_NET_MS, 50);
    const second = await backupNow();
    await copyEnded(label, second.key);
    const listed: string[] = [];
    for await (const item of copyClient.listObjectsV2(copyBucket, 'copies/', true)) if (item.name) listed.push(item.name);
    const secondName = second.key.slice('prod/'.length);
    assert.deepEqual(listed.sort(), [`copies/${secondName}`, `copies/${secondName}.sha256`]);
    await primary.statObject(primaryBucket, first.key);

    const metrics = (await stack.request<string>('GET', '/metrics', { token: null })).body;
    assert.match(metrics, new RegExp(`^chango_backup_copy_runs_total\\{destination="${label}",result="success"\\} 2$`, 'm'));
    assert.match(metrics, new RegExp(`^chango_backup_copy_last_success_timestamp_seconds\\{destination="${label}"\\} \\d+`, 'm'));
    const jobs = (await stack.request<{ jobs: { kind: string; key: string | null; state: string }[] }>('GET', '/admin/api/backup/jobs?limit=50')).body.jobs;
    assert.ok(jobs.some((j) => j.kind === 'copy' && j.key === second.key && j.state === 'completed'), JSON.stringify(jobs.map((j) => [j.kind, j.state])));

    assert.ok(!stack.transcript().includes(copyUser.secretKey), 'the copy secret is in no log and no answer');
    assert.ok(!(await stack.redisDump()).includes(Buffer.from(copyUser.secretKey)), 'nor in Redis');
  });

  test('in a local directory: YYYY-MM/<name> byte-identical, sha256sum -c OK; the CLI lists and restores from --dir with no S3 setting', async (t) => {
    const root = join(await tempDir(t, 'chango-offline'), 'chango');
    await mkdir(root);
    await configure({ type: 'directory', path: root });
    const backup = await backupNow();
    const { target } = await copyEnded(`file://${root}`, backup.key);
    const name = backup.key.slice('prod/'.length);
    const folder = join(root, monthFolder(name));
    assert.equal(target.lastSuccess?.copyKey, join(folder, name));
    assert.deepEqual((await readdir(folder)).sort(), [name, `${name}.sha256`], 'no partial file is left');
    assert.ok((await readFile(join(folder, name))).equals(await readAll(await primary.getObject(primaryBucket, backup.key))));
    assert.match((await run('sha256sum', ['-c', `${name}.sha256`], { cwd: folder })).stdout, new RegExp(`${name.replace(/\./g, '\\.')}: OK`));

    // No S3 variable at all: the CLI reads the directory alone.
    const env = { CHANGO_ROOT_SECRET_FILE: stack.secretFile };
    const listed = await runCli(['list', '--dir', root, '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const listing = JSON.parse(listed.stdout) as { dir: string; objects: { key: string; complete: boolean; sha256: string }[] };
    assert.equal(listing.dir, root);
    assert.deepEqual(listing.objects.map((o) => [o.key, o.complete, o.sha256]), [[name, true, backup.sha256]]);
    const restoredDir = join(await tempDir(t, 'chango-restored'), 'data');
    const restored = await runCli(['restore', '--dir', root, '--latest', '--data-dir', restoredDir], env);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, /equal to the sidecar/);
    const stats = async (dataDir: string) => JSON.parse((await runCli(['state', 'stats', '--json'], { ...env, CHANGO_DATA_DIR: dataDir })).stdout) as unknown;
    assert.deepEqual(await stats(restoredDir), await stats(stack.dataDir));
    const verified = await runCli(['verify', '--dir', root, '--key', name], env);
    assert.equal(verified.code, 0, verified.stderr);
    const unknown = await runCli(['inspect', '--dir', root, '--key', name.replace(/^chango-\d{8}/, 'chango-20200101')], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no backup chango-20200101.* in /);

    // The worker's drill, pointed at the copy: it reads the directory, restores, and writes its record there.
    const asked = await stack.request<{ statusUrl: string }>('POST', '/admin/api/backup/verify', { body: { from: 'copy' } });
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    const drill = await waitFor('the drill from the copy', async () => {
      const view = (await stack.request<{ state: string; result: VerificationRecord | null; failure: { message: string } | null }>('GET', asked.body.statusUrl)).body;
      return view.state === 'completed' || view.state === 'failed' ? view : undefined;
    }, SAFETY_NET_MS, 250);
    assert.equal(drill.state, 'completed', drill.failure?.message);
    assert.deepEqual({ key: drill.result?.key, ok: drill.result?.ok, kind: drill.result?.kind, source: drill.result?.source }, { key: name, ok: true, kind: 'restore', source: 'copy' });
    assert.deepEqual(drill.result?.records, backup.records);
    const record = JSON.parse(await readFile(join(folder, `${name}.verify.json`), 'utf8')) as VerificationRecord;
    assert.equal(record.source, 'copy');
    assert.equal((await stack.request<BackupStatus>('GET', '/admin/api/backup/status')).body.lastVerify?.source, 'copy');
    const bad = await stack.request<{ fields: { field: string }[] }>('POST', '/admin/api/backup/verify', { body: { from: 'elsewhere' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.fields[0]?.field, 'from');
  });

  test('a copy target that is down fails only the copy: the primary backup is committed; status, metrics and the job say so', async (t) => {
    const missing = join(await tempDir(t, 'chango-unmounted'), 'not-mounted');
    await configure({ type: 'directory', path: missing });
    const backup = await backupNow();
    await primary.statObject(primaryBucket, `${backup.key}.sha256`);
    const { status, target } = await copyEnded(`file://${missing}`, backup.key);
    assert.equal(target.lastSuccess, null);
    assert.match(target.lastFailure?.error ?? '', /the copy directory .*not-mounted does not exist: mount the disk or create the directory .*\(attempt 2 of 2; no attempt left\)/);
    assert.equal(status.lastSuccess?.key, backup.key, 'the backup itself succeeded');
    assert.deepEqual(status.lastCopy.map((c) => c.destination), [`file://${missing}`], 'only the configured target is shown');
    const metrics = (await stack.request<string>('GET', '/metrics', { token: null })).body;
    assert.match(metrics, new RegExp(`^chango_backup_copy_last_failure_timestamp_seconds\\{destination="file://${missing}"\\} \\d+`, 'm'));
    assert.doesNotMatch(metrics, new RegExp(`chango_backup_copy_last_success_timestamp_seconds\\{destination="file://${missing}"\\}`));

    // An S3 copy target that refuses connections: the same story, in the words of S3.
    await configure(s3Copy({ endpoint: 'http://127.0.0.1:9' }));
    const next = await backupNow();
    const s3Down = await copyEnded('http://127.0.0.1:9/' + copyBucket + '/copies/', next.key);
    assert.match(s3Down.target.lastFailure?.error ?? '', /127\.0\.0\.1:9.*\(attempt 2 of 2; no attempt left\)/);
    assert.equal(s3Down.status.lastSuccess?.key, next.key);
  });
});
