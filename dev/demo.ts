/**
 * `npm run demo`: the whole service on this machine with embedded defaults, for
 * a first look. It is NOT how production starts (`npm run start:api` and
 * `npm run start:worker` never invent secrets); here, under `.demo/`:
 *   - a dev root secret and an admin token are generated once (files 0600),
 *   - a data dir is seeded with realistic demo state,
 *   - a throwaway Ceph RADOS Gateway on loopback is the S3 destination
 *     (in memory: its objects are gone when the demo stops),
 *   - the worker and the api run as child processes, logs in .demo/logs/.
 * Needs Redis at REDIS_URL (default 127.0.0.1:6379). Ctrl-C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { newToken } from '@chango/security';
import { minioClient, startRgw } from '../testkit/local-rgw.js';

const ROOT = join(import.meta.dirname, '..');
const DEMO = join(ROOT, '.demo');
const PORT = process.env.PORT || '8080';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

function once(path: string, make: () => string): string {
  if (!existsSync(path)) writeFileSync(path, make(), { mode: 0o600 });
  return readFileSync(path, 'utf8');
}

function start(name: string, script: string, env: NodeJS.ProcessEnv): ChildProcess {
  const log = openSync(join(DEMO, 'logs', `${name}.log`), 'a');
  const child = spawn(process.execPath, [join(ROOT, script)], { env, stdio: ['ignore', log, log] });
  child.on('exit', (code) => {
    if (!stopping) {
      console.error(`${name} exited (${code}); see .demo/logs/${name}.log`);
      void shutdown(1);
    }
  });
  return child;
}

async function waitFor(url: string, ok: (status: number) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if (ok((await fetch(url)).status)) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not come up; see .demo/logs/`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

let stopping = false;
const children: ChildProcess[] = [];
let stopS3: () => Promise<void> = async () => undefined;

async function shutdown(code: number): Promise<never> {
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  await stopS3();
  process.exit(code);
}

async function main(): Promise<void> {
  mkdirSync(join(DEMO, 'logs'), { recursive: true, mode: 0o700 });
  const secretFile = join(DEMO, 'root-secret');
  once(secretFile, () => `${randomBytes(48).toString('base64')}\n`);
  const tokenFile = join(DEMO, 'admin-token');
  const tokensFile = join(DEMO, 'tokens');
  const firstRun = !existsSync(tokenFile);
  const token = once(tokenFile, () => {
    const admin = newToken('demo-admin', 'admin');
    writeFileSync(tokensFile, `# demo tokens (sha256 of each token)\n${admin.line}\n`, { mode: 0o600 });
    return admin.token;
  }).trim();

  const env = {
    ...process.env,
    CHANGO_DATA_DIR: join(DEMO, 'data'),
    CHANGO_ROOT_SECRET_FILE: secretFile,
    CHANGO_API_TOKENS_FILE: tokensFile,
    REDIS_URL,
    CHANGO_QUEUE_PREFIX: 'chango-demo',
    PORT,
  };
  if (!existsSync(join(DEMO, 'data', 'kms'))) {
    console.log('seeding demo state in .demo/data …');
    const seed = spawn(process.execPath, [join(ROOT, 'apps/cli/dist/main.js'), 'state', 'seed', '--users', '25', '--components', '400'], { env, stdio: 'inherit' });
    const code = await new Promise<number | null>((resolve) => seed.on('exit', resolve));
    if (code !== 0) throw new Error('seeding the demo state failed');
  }

  console.log('starting a local S3 endpoint (Ceph RADOS Gateway on loopback) …');
  const s3 = await startRgw();
  stopS3 = () => s3.stop();
  const bucket = 'chango-backups';
  await minioClient(s3).makeBucket(bucket);

  children.push(start('worker', 'apps/worker/dist/main.js', env));
  children.push(start('api', 'apps/api/dist/main.js', env));
  const base = `http://127.0.0.1:${PORT}`;
  await waitFor(`${base}/readyz`, (status) => status === 200, 'the api and worker');

  const put = await fetch(`${base}/admin/api/backup/config`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ endpoint: s3.endpoint, region: s3.region, bucket, prefix: 'demo/', accessKey: s3.accessKey, secretKey: s3.secretKey }),
  });
  if (!put.ok) throw new Error(`configuring the destination failed: ${await put.text()}`);

  console.log(`
chango-backup demo is running.
  api:          ${base}
  admin UI:     ${base}/admin/  (sign in with the admin token)
  destination:  ${s3.endpoint} bucket ${bucket}, prefix demo/ (in memory, gone when the demo stops)
  admin token:  ${firstRun ? token : `in .demo/admin-token (printed on the first run only)`}

Run a backup:
  curl -X POST -H "Authorization: Bearer $(cat .demo/admin-token)" ${base}/admin/api/backup/run

Look around:
  curl -H "Authorization: Bearer $(cat .demo/admin-token)" ${base}/admin/api/backup/jobs
  curl -H "Authorization: Bearer $(cat .demo/admin-token)" ${base}/admin/api/backup/objects
  curl ${base}/metrics

Logs in .demo/logs/. Ctrl-C stops everything.`);
}

process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));
main().catch(async (err: unknown) => {
  console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
  await shutdown(1);
});
