import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { newRootSecret, tempDir, writeSecretFile } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';
import { RunningProcess, WORKER, runCli, runNode } from '../../testkit/processes.js';

/** The one line a refused start leaves on stderr. */
function refusal(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `exactly one line on stderr, got: ${stderr}`);
  return lines[0] ?? '';
}

test('without a root secret the worker stops at once, saying how to give one', async (t) => {
  const dataDir = await tempDir(t);
  const result = await runNode(WORKER, [], { CHANGO_DATA_DIR: dataDir });
  assert.equal(result.code, 1);
  assert.match(refusal(result.stderr), /^chango-worker: cannot start: no cluster root secret: set CHANGO_ROOT_SECRET_FILE/);
});

test('a root secret shorter than 32 bytes stops the worker and is not echoed', async (t) => {
  const dir = await tempDir(t);
  const short = 'abcdefghijklmnopqrstuvwxyz01234';
  const result = await runNode(WORKER, [], { CHANGO_DATA_DIR: join(dir, 'data'), CHANGO_ROOT_SECRET_FILE: await writeSecretFile(dir, short) });
  assert.equal(result.code, 1);
  const line = refusal(result.stderr);
  assert.match(line, /the cluster root secret is 31 bytes; at least 32 are required/);
  assert.ok(!line.includes(short));
});

test('a wrong root secret stops the worker with a message naming the root secret', async (t) => {
  const dir = await tempDir(t);
  const dataDir = join(dir, 'data');
  const seeded = await runCli(['state', 'seed', '--data-dir', dataDir, '--users', '2', '--components', '5'], { CHANGO_ROOT_SECRET: newRootSecret() });
  assert.equal(seeded.code, 0, seeded.stderr);
  const wrong = newRootSecret();
  const result = await runNode(WORKER, [], { CHANGO_DATA_DIR: dataDir, CHANGO_ROOT_SECRET_FILE: await writeSecretFile(dir, wrong) });
  assert.equal(result.code, 1);
  const line = refusal(result.stderr);
  assert.match(line, /the cluster root secret does not match the one these stores were created with/);
  assert.ok(!line.includes(wrong));
});

test('the worker creates the stores on first start, stays up, and a second worker on the same stores is refused', async (t) => {
  const dir = await tempDir(t);
  const dataDir = join(dir, 'data');
  const secret = newRootSecret();
  const env = { CHANGO_DATA_DIR: dataDir, CHANGO_ROOT_SECRET_FILE: await writeSecretFile(dir, secret) };
  const worker = RunningProcess.start(WORKER, env);
  t.after(() => worker.stop('SIGKILL'));
  await worker.waitForOutput('worker ready');

  const second = await runNode(WORKER, [], env);
  assert.equal(second.code, 1);
  assert.match(refusal(second.stderr), /is in use by another process .*stop the other chango worker/);

  // Still up after the second one gave up, then a clean stop on SIGTERM.
  assert.equal(worker.child.exitCode, null);
  assert.equal(await worker.stop('SIGTERM', SAFETY_NET_MS), 0); // a clean exit is asserted: only the safety net may cut it short
  for (const output of [worker.stdout, worker.stderr, second.stderr]) assert.ok(!output.includes(secret), 'root secret never printed');
});

test('every thread of the worker runs at nice 10 by default, or at the CHANGO_WORKER_NICE asked for', async (t) => {
  const dir = await tempDir(t);
  for (const [asked, expected] of [[undefined, 10], ['15', 15]] as const) {
    const env = { CHANGO_DATA_DIR: join(dir, `data-${expected}`), CHANGO_ROOT_SECRET_FILE: await writeSecretFile(dir, newRootSecret()), ...(asked ? { CHANGO_WORKER_NICE: asked } : {}) };
    const worker = RunningProcess.start(WORKER, env);
    t.after(() => worker.stop('SIGKILL'));
    await worker.waitForOutput('worker ready');
    // /proc/PID/task/TID/stat: the 19th field is the thread's nice value (after the command in parentheses).
    const tasks = await readdir(`/proc/${worker.child.pid}/task`);
    const nices = await Promise.all(tasks.map(async (tid) => Number((await readFile(`/proc/${worker.child.pid}/task/${tid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[16])));
    assert.ok(tasks.length > 4, `the worker runs threads besides its main one (${tasks.length})`);
    assert.deepEqual([...new Set(nices)], [expected], `every one of its ${tasks.length} threads`);
    await worker.stop('SIGTERM', SAFETY_NET_MS);
  }
});

test('a malformed setting stops the worker naming the variable', async (t) => {
  const dir = await tempDir(t);
  const result = await runNode(WORKER, [], { CHANGO_DATA_DIR: join(dir, 'data'), CHANGO_ROOT_SECRET: newRootSecret(), CHANGO_GZIP_LEVEL: 'fast' });
  assert.equal(result.code, 1);
  assert.equal(refusal(result.stderr), 'chango-worker: cannot start: CHANGO_GZIP_LEVEL must be a whole number from 1 to 9, got "fast"');
});

test('where scheduled drills read, and the age identity file, are checked at start and named', async (t) => {
  const dir = await tempDir(t);
  const base = { CHANGO_DATA_DIR: join(dir, 'data'), CHANGO_ROOT_SECRET: newRootSecret() };
  const from = await runNode(WORKER, [], { ...base, CHANGO_VERIFY_SCHEDULED_FROM: 'backup' });
  assert.equal(from.code, 1);
  assert.equal(refusal(from.stderr), 'chango-worker: cannot start: CHANGO_VERIFY_SCHEDULED_FROM must be one of primary, copy, got "backup"');
  const identity = await runNode(WORKER, [], { ...base, CHANGO_AGE_IDENTITY_FILE: join(dir, 'missing-key.txt') });
  assert.equal(identity.code, 1);
  assert.match(refusal(identity.stderr), /^chango-worker: cannot start: cannot read the age identity file .*missing-key\.txt \(ENOENT\)/);
});

test('under systemd: the worker starts with only CREDENTIALS_DIRECTORY, and refuses a root secret given there and in a variable', async (t) => {
  const dir = await tempDir(t);
  const dataDir = join(dir, 'data');
  // What systemd makes of LoadCredential=root-secret:/etc/chango-backup/root-secret: a folder holding a copy, named in CREDENTIALS_DIRECTORY.
  const credentials = join(dir, 'credentials');
  await mkdir(credentials, { mode: 0o700 });
  const secret = newRootSecret();
  await writeFile(join(credentials, 'root-secret'), `${secret}\n`, { mode: 0o400 });
  const env = { CHANGO_DATA_DIR: dataDir, CREDENTIALS_DIRECTORY: credentials, CHANGO_QUEUE_PREFIX: `cred-${randomUUID()}` };

  const worker = RunningProcess.start(WORKER, env);
  t.after(() => worker.stop('SIGKILL'));
  await worker.waitForOutput('worker ready');
  assert.equal(await worker.stop('SIGTERM', SAFETY_NET_MS), 0);

  // The same stores open again only with the same secret: the credential was what opened them.
  const twice = await runNode(WORKER, [], { ...env, CHANGO_ROOT_SECRET_FILE: await writeSecretFile(dir, secret) });
  assert.equal(twice.code, 1);
  assert.equal(
    refusal(twice.stderr),
    `chango-worker: cannot start: the cluster root secret is given twice: by CHANGO_ROOT_SECRET_FILE and by the systemd credential root-secret ` +
      `(${join(credentials, 'root-secret')}, from the unit's LoadCredential=); give it one way only, so it is clear which one is meant`,
  );
  const wrong = await runNode(WORKER, [], { CHANGO_DATA_DIR: dataDir, CHANGO_ROOT_SECRET: newRootSecret() });
  assert.match(refusal(wrong.stderr), /the cluster root secret does not match the one these stores were created with/);
  for (const output of [worker.stdout, worker.stderr, twice.stderr]) assert.ok(!output.includes(secret), 'root secret never printed');
});
