import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { BackupStatus } from '@chango/contracts';
import { SuiteScope, tempDir } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';
import { CLI, childEnv, runCli } from '../../testkit/processes.js';
import { Stack } from '../../testkit/stack.js';
import { createTestBucket, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';

const run = promisify(execFile);

describe('chango-backup backup …: the CLI drives a running service through its api (real api, worker, Redis, RGW)', () => {
  const scope = new SuiteScope();
  let rgw: RgwCluster;
  let stack: Stack;
  let dir: string;
  let bucket: string;
  let env: Record<string, string>;

  const cli = (args: string[], extra: Record<string, string> = {}) => runCli(['backup', ...args], { ...env, ...extra });

  before(async () => {
    rgw = await startRgw();
    scope.after(() => rgw.stop());
    stack = await Stack.start(scope, { users: 3, components: 3_000, env: { CHANGO_VERIFY_SCHEDULED: 'false' } });
    bucket = await createTestBucket(rgw);
    const put = await stack.request('PUT', '/admin/api/backup/config', { body: { endpoint: rgw.endpoint, region: rgw.region, bucket, prefix: 'cli/', accessKey: rgw.accessKey, secretKey: rgw.secretKey } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    dir = await tempDir(scope, 'chango-cli-api');
    await writeFile(join(dir, 'admin-token'), `${stack.adminToken}\n`, { mode: 0o600 });
    env = { CHANGO_API_URL: stack.baseUrl, CHANGO_API_TOKEN_FILE: join(dir, 'admin-token') };
  });
  after(() => scope.run());

  test('backup run --wait exits 0 and prints the key and SHA-256; in a pipe the phases are plain lines; status agrees', async () => {
    const made = await cli(['run', '--wait']);
    assert.equal(made.code, 0, made.stderr);
    const key = /^backup committed: (cli\/chango-\S+\.tar\.gz)$/m.exec(made.stdout)?.[1];
    const sha256 = /^ {2}sha256 ([0-9a-f]{64})$/m.exec(made.stdout)?.[1];
    assert.ok(key && sha256, made.stdout);
    assert.match(made.stderr, /^phase (checkpoint|archive|upload|commit|done)/m, 'phases as lines, no bar, in a pipe');
    assert.doesNotMatch(made.stderr, /\u001b\[/, 'no terminal control codes in a pipe');
    const status = (await stack.request<BackupStatus>('GET', '/admin/api/backup/status')).body;
    assert.deepEqual({ key: status.lastSuccess?.key, sha256: status.lastSuccess?.sha256 }, { key, sha256 });

    const json = await cli(['run', '--wait', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const job = JSON.parse(json.stdout) as { id: string; state: string; result: { key: string; sha256: string } };
    assert.equal(job.state, 'completed');
    assert.match(job.result.key, /^cli\/chango-/);
    assert.equal(json.stderr, '', '--json: nothing but the JSON');

    const one = await cli(['job', job.id, '--json']);
    assert.equal(one.code, 0, one.stderr);
    assert.equal((JSON.parse(one.stdout) as { result: { key: string } }).result.key, job.result.key);
    const jobs = await cli(['jobs', '--limit', '5']);
    assert.equal(jobs.code, 0, jobs.stderr);
    assert.match(jobs.stdout, new RegExp(`^${job.id}\\s+backup\\s+completed\\s+${job.result.key.replace(/\./g, '\\.')}$`, 'm'));
  });

  test('on a terminal --wait shows a live bar with the phase, bytes and rate', async () => {
    // `script` gives the command a pseudo-terminal, as an operator's shell would.
    const command = [process.execPath, CLI, 'backup', 'run', '--wait'].map((part) => `'${part}'`).join(' ');
    const { stdout } = await run('script', ['-qec', command, '/dev/null'], { env: childEnv(env), timeout: SAFETY_NET_MS });
    assert.match(stdout, /(checkpoint|archive|upload|commit|done) +\|[█░]+\| \d+% [\d.]+ (bytes|KiB|MiB) of [\d.]+ (bytes|KiB|MiB)/, 'the bar, with a phase and bytes');
    assert.match(stdout, /backup committed: cli\/chango-/);
  });

  test('status, verify --wait, config get and set: the secret comes from a file and is never printed', async () => {
    const status = await cli(['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^leader +${stack.env.CHANGO_NODE_ID} \\(epoch \\d+`, 'm'));
    const drill = await cli(['verify', '--wait']);
    assert.equal(drill.code, 0, drill.stderr);
    assert.match(drill.stdout, /^drilled cli\/chango-\S+ \(from the primary\): it restores$/m);

    const got = await cli(['config', 'get']);
    assert.equal(got.code, 0, got.stderr);
    const config = JSON.parse(got.stdout) as Record<string, unknown>;
    assert.equal(config.secretKeySet, true);
    await writeFile(join(dir, 'body.json'), JSON.stringify({ ...config, secretKeySet: undefined, schedule: '0 4 * * *' }));
    await writeFile(join(dir, 's3-secret'), `${rgw.secretKey}\n`, { mode: 0o600 });
    const set = await cli(['config', 'set', '--file', join(dir, 'body.json'), '--secret-key-file', join(dir, 's3-secret')]);
    assert.equal(set.code, 0, set.stderr);
    assert.equal((JSON.parse(set.stdout) as { schedule: string }).schedule, '0 4 * * *');
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ ...config, secretKeySet: undefined, bucket: 'Bad_Bucket' }));
    const refused = await cli(['config', 'set', '--file', join(dir, 'bad.json')]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /the api refused the destination: bucket must be an S3 bucket name/);
    for (const output of [got.stdout, set.stdout, set.stderr, refused.stderr]) assert.ok(!output.includes(rgw.secretKey), 'the S3 secret is never printed');
  });

  test('the documented exit statuses: 2 for usage, 3 for an api that refuses or cannot be reached, each in words', async () => {
    const limit = await cli(['jobs', '--limit', '0']);
    assert.equal(limit.code, 2);
    assert.match(limit.stderr, /--limit.*whole number from 1 to 500/);
    const noToken = await runCli(['backup', 'status'], { CHANGO_API_URL: stack.baseUrl });
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /CHANGO_API_TOKEN_FILE is not set: .* a token is never a flag/);

    await writeFile(join(dir, 'wrong-token'), 'chb_not-a-real-token\n');
    const wrong = await cli(['status'], { CHANGO_API_TOKEN_FILE: join(dir, 'wrong-token') });
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /the api at http:\/\/127\.0\.0\.1:\d+ refused GET \/admin\/api\/backup\/status: 401/);
    assert.ok(!wrong.stderr.includes('chb_not-a-real-token'), 'the token is never printed');
    const gone = await cli(['status'], { CHANGO_API_URL: 'http://127.0.0.1:9' });
    assert.equal(gone.code, 3);
    assert.match(gone.stderr, /the api at http:\/\/127\.0\.0\.1:9 cannot be reached \(ECONNREFUSED/);

    // A stopped worker: the api cannot start a backup, and says so.
    await stack.worker.stop();
    const stopped = await cli(['run', '--wait']);
    assert.equal(stopped.code, 3, stopped.stderr);
    assert.match(stopped.stderr, /refused POST \/admin\/api\/backup\/run: 503 worker_unavailable/);
  });
});
