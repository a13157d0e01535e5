import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type * as Minio from 'minio';
import { createHash } from 'node:crypto';
import { buffer as readAll } from 'node:stream/consumers';
import type { BackupObject, BackupResult, BackupStatus, ObjectsResult, VerificationRecord } from '@chango/contracts';
import type { Manifest } from '@chango/archive';
import { SuiteScope, tempDir, waitFor } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';
import { runCli } from '../../testkit/processes.js';
import { Stack } from '../../testkit/stack.js';
import { createTestBucket, minioClient, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';

const run = promisify(execFile);
/** Debian's age and age-keygen (scripts/debian-deps.sh): the reference implementation, not ours. */
const AGE = '/usr/bin/age';
const AGE_KEYGEN = '/usr/bin/age-keygen';

/** An identity file written by age-keygen, and its public key as age-keygen -y prints it. */
interface KeyPair {
  file: string;
  identity: string;
  recipient: string;
}

async function keyPair(dir: string, name: string): Promise<KeyPair> {
  const file = join(dir, `${name}.txt`);
  await run(AGE_KEYGEN, ['-o', file]);
  const recipient = (await run(AGE_KEYGEN, ['-y', file])).stdout.trim();
  const identity = (await readFile(file, 'utf8')).split('\n').find((line) => line.startsWith('AGE-SECRET-KEY-1')) ?? '';
  return { file, identity, recipient };
}


describe('archives encrypted to offline age recipients (real RGW, real RocksDB, Debian age)', () => {
  const scope = new SuiteScope();
  let rgw: RgwCluster;
  let stack: Stack;
  let s3: Minio.Client;
  let bucket: string;
  let s3Env: Record<string, string>;
  let keys: { operator: KeyPair; escrow: KeyPair; stranger: KeyPair };
  let sourceStats: unknown;
  let backup: BackupResult;

  const destination = (extra: Record<string, unknown> = {}) => ({
    endpoint: rgw.endpoint,
    region: rgw.region,
    bucket,
    prefix: 'enc/',
    accessKey: rgw.accessKey,
    secretKey: rgw.secretKey,
    encryption: { recipients: [keys.operator.recipient, keys.escrow.recipient] },
    ...extra,
  });
  const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { ...s3Env, CHANGO_ROOT_SECRET_FILE: stack.secretFile, ...env });
  const statsOf = async (dataDir: string) => {
    const stats = await runCli(['state', 'stats', '--json'], { CHANGO_DATA_DIR: dataDir, CHANGO_ROOT_SECRET_FILE: stack.secretFile });
    assert.equal(stats.code, 0, stats.stderr);
    return JSON.parse(stats.stdout) as unknown;
  };
  const drill = async (key: string) => {
    const asked = await stack.request<{ statusUrl: string }>('POST', '/admin/api/backup/verify', { body: { key } });
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    // A drill's length is its own work (download, decrypt, restore): no interval to derive from, the safety net bounds it.
    const job = await waitFor('the drill to end', async () => {
      const view = (await stack.request<{ state: string; result: VerificationRecord | null; failure: { message: string } | null }>('GET', asked.body.statusUrl)).body;
      return view.state === 'completed' || view.state === 'failed' ? view : undefined;
    }, SAFETY_NET_MS);
    assert.equal(job.state, 'completed', job.failure?.message);
    return job.result as VerificationRecord;
  };

  before(async () => {
    const dir = await tempDir(scope, 'chango-age-keys');
    keys = { operator: await keyPair(dir, 'operator'), escrow: await keyPair(dir, 'escrow'), stranger: await keyPair(dir, 'stranger') };
    rgw = await startRgw();
    scope.after(() => rgw.stop());
    s3 = minioClient(rgw);
    stack = await Stack.start(scope, { users: 5, components: 200, env: { CHANGO_BACKUP_ATTEMPTS: '1', CHANGO_VERIFY_SCHEDULED: 'false' } });
    bucket = await createTestBucket(rgw);
    const put = await stack.request('PUT', '/admin/api/backup/config', { body: destination() });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    s3Env = {
      CHANGO_S3_ENDPOINT: rgw.endpoint,
      CHANGO_S3_REGION: rgw.region,
      CHANGO_S3_BUCKET: bucket,
      CHANGO_S3_PREFIX: 'enc/',
      CHANGO_S3_ACCESS_KEY: rgw.accessKey,
      CHANGO_S3_SECRET_KEY: rgw.secretKey,
    };
    sourceStats = await statsOf(stack.dataDir);
    const made = await stack.request<BackupResult>('POST', '/admin/api/backup/run');
    assert.equal(made.status, 200, JSON.stringify(made.body));
    backup = made.body;
  });
  after(() => scope.run());

  test('the config shows the recipients; a bad one, or an identity where a recipient belongs, is a 400 naming the field and never echoed', async () => {
    const shown = await stack.request<{ encryption: { recipients: string[] } | null }>('GET', '/admin/api/backup/config');
    assert.deepEqual(shown.body.encryption, { recipients: [keys.operator.recipient, keys.escrow.recipient] });

    const typo = `${keys.operator.recipient.slice(0, -1)}${keys.operator.recipient.endsWith('q') ? 'p' : 'q'}`;
    for (const [recipients, field] of [
      [[typo], 'encryption.recipients.0'],
      [[keys.operator.recipient, keys.stranger.identity], 'encryption.recipients.1'],
      [[], 'encryption.recipients'],
      [[keys.operator.recipient, keys.operator.recipient], 'encryption.recipients'],
    ] as const) {
      const refused = await stack.request<{ fields: { field: string; message: string }[] }>('PUT', '/admin/api/backup/config', { body: destination({ encryption: { recipients } }) });
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.fields[0]?.field, field, JSON.stringify(refused.body));
    }
    assert.ok(!stack.transcript().includes(keys.stranger.identity), 'an identity sent by mistake is never echoed or logged');
    const unchanged = await stack.request<{ encryption: { recipients: string[] } | null }>('GET', '/admin/api/backup/config');
    assert.deepEqual(unchanged.body.encryption, shown.body.encryption, 'a refused save changes nothing');
  });

  test('the stored object is age, not gzip; its sidecar holds the SHA-256 of the stored bytes; Debian age opens it into the three stores', async (t) => {
    assert.match(backup.key, /^enc\/chango-\d{8}T\d{6}Z-[0-9a-f-]{36}\.tar\.gz\.age$/);
    assert.equal(backup.encrypted, true);
    const stored = await readAll(await s3.getObject(bucket, backup.key));
    assert.notDeepEqual([...stored.subarray(0, 2)], [0x1f, 0x8b], 'not the gzip magic bytes');
    assert.equal(stored.subarray(0, 22).toString('latin1'), 'age-encryption.org/v1\n');
    const sha256 = createHash('sha256').update(stored).digest('hex');
    assert.equal(sha256, backup.sha256);
    const sidecar = (await readAll(await s3.getObject(bucket, `${backup.key}.sha256`))).toString('utf8');
    assert.equal(sidecar, `${sha256}  ${backup.key.slice('enc/'.length)}\n`);

    const dir = await tempDir(t, 'chango-age-open');
    const file = join(dir, backup.key.slice('enc/'.length));
    await writeFile(file, stored);
    await writeFile(`${file}.sha256`, sidecar);
    assert.match((await run('sha256sum', ['-c', `${file}.sha256`], { cwd: dir })).stdout, /: OK$/m);
    // Either recipient's identity opens it, with the reference tool: age -d -i key.txt FILE | tar -xz.
    for (const key of [keys.operator, keys.escrow]) {
      const out = join(dir, `opened-by-${key === keys.operator ? 'operator' : 'escrow'}`);
      await mkdir(out);
      await run('bash', ['-c', 'set -o pipefail; "$0" -d -i "$1" "$2" | tar -xz -C "$3"', AGE, key.file, file, out]);
      assert.deepEqual((await readdir(out)).sort(), ['iam', 'kms', 'manifest.json', 'metadata']);
      const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as Manifest;
      assert.equal(manifest.backupId, backup.backupId);
    }
    const refused = await run(AGE, ['-d', '-i', keys.stranger.file, file]).then(() => 'opened', (err: { stderr: string }) => err.stderr);
    assert.match(refused, /no identity matched/);
  });

  test('restore --identity round trip equals the source; inspect takes the file from CHANGO_AGE_IDENTITY_FILE', async (t) => {
    const target = join(await tempDir(t, 'chango-restored'), 'data');
    const restored = await cli(['restore', '--data-dir', target, '--key', backup.key, '--identity', keys.escrow.file]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, /equal to the sidecar/);
    assert.deepEqual((await readdir(target)).sort(), ['iam', 'kms', 'metadata']);
    assert.deepEqual(await statsOf(target), sourceStats);

    const inspected = await cli(['inspect', '--latest', '--json'], { CHANGO_AGE_IDENTITY_FILE: keys.operator.file });
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.equal((JSON.parse(inspected.stdout) as Manifest).backupId, backup.backupId);
    for (const output of [restored.stdout, restored.stderr, inspected.stdout, inspected.stderr]) {
      assert.ok(!output.includes(keys.escrow.identity) && !output.includes(keys.operator.identity), 'no identity in the output');
    }
  });

  test('a wrong identity, none at all, or a file that is not one is refused in words, and nothing is written', async (t) => {
    const parent = await tempDir(t, 'chango-refused');
    const target = join(parent, 'data');
    const wrong = await cli(['restore', '--data-dir', target, '--key', backup.key, '--identity', keys.stranger.file]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /none of the 1 identity given opens it/);
    assert.deepEqual(await readdir(parent), [], 'no data dir was left behind');

    const none = await cli(['restore', '--data-dir', target, '--key', backup.key]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /encrypted to offline age recipients: give the identity file that opens it with --identity FILE/);
    const local = join(parent, 'local.tar.gz.age');
    await writeFile(local, await readAll(await s3.getObject(bucket, backup.key)));
    // A downloaded file is told by its first bytes, whatever its name.
    const noneLocal = await cli(['restore', '--data-dir', target, '--file', local, '--sha256', backup.sha256]);
    assert.equal(noneLocal.code, 1);
    assert.match(noneLocal.stderr, /encrypted to offline age recipients .* no identity was given/);

    const notAKey = join(parent, 'not-a-key.txt');
    await writeFile(notAKey, `# a note\n${keys.stranger.recipient}\n`);
    const garbage = await cli(['inspect', '--key', backup.key, '--identity', notAKey]);
    assert.equal(garbage.code, 1);
    assert.match(garbage.stderr, /--identity: line 2 of the identity file .* is not an age X25519 identity/);
    assert.deepEqual((await readdir(parent)).sort(), ['local.tar.gz.age', 'not-a-key.txt'], 'nothing else was written');
  });

  test('the drill: without an identity the worker checks the stored bytes and says so; with one it restores', async () => {
    const checked = await drill(backup.key);
    assert.equal(checked.ok, true, checked.error ?? '');
    assert.equal(checked.kind, 'checksum');
    assert.equal(checked.records, null);
    assert.equal(checked.sha256, backup.sha256);
    const status = (await stack.request<BackupStatus>('GET', '/admin/api/backup/status')).body;
    assert.equal(status.lastVerify?.kind, 'checksum');
    let metrics = (await stack.request<string>('GET', '/metrics', { token: null })).body;
    assert.match(metrics, /^chango_backup_last_verify_success 1$/m);
    assert.match(metrics, /^chango_backup_last_verify_restored 0$/m);
    const listed = await stack.request<ObjectsResult>('GET', '/admin/api/backup/objects');
    const object = listed.body.objects.find((o: BackupObject) => o.key === backup.key);
    assert.deepEqual({ ok: object?.verify?.ok, kind: object?.verify?.kind }, { ok: true, kind: 'checksum' });
    assert.match((await cli(['list'])).stdout, new RegExp(`${backup.key.replace(/\./g, '\\.')}\\s.*bytes checked`));

    // The same worker given an identity file does the full drill.
    await stack.worker.stop();
    await stack.startWorker({ CHANGO_AGE_IDENTITY_FILE: keys.escrow.file });
    const restored = await drill(backup.key);
    assert.equal(restored.ok, true, restored.error ?? '');
    assert.equal(restored.kind, 'restore');
    assert.deepEqual(restored.records, backup.records);
    metrics = (await stack.request<string>('GET', '/metrics', { token: null })).body;
    assert.match(metrics, /^chango_backup_last_verify_restored 1$/m);
    assert.ok(!stack.transcript().includes(keys.escrow.identity), 'the worker never prints the identity');
  });
});
