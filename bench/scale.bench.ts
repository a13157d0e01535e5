/**
 * Scale bench: does anything a backup, a listing or `list --latest` does grow
 * with the number of backups kept? Two destinations on the same Ceph RGW, one
 * holding 10 committed backups and one holding BENCH_SCALE_BACKUPS (10,000 by
 * default) — tiny synthetic archives with real sidecars, written straight to
 * S3 — both with `retention: {keepAll: true}` so they keep them all. For each:
 * a backup of the demo state through the api (api call → committed, retention
 * pass included), `GET /objects?limit=50` p50/p99, `chango-backup list
 * --latest`, and the S3 requests each makes, counted by an HTTP proxy in front
 * of the RGW (not guessed). The 10-backup figures are the baseline of the same
 * run: the ratios are what matter.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BackupResult } from '@chango/contracts';
import { createTestBucket, minioClient, startRgw, type RgwCluster } from '../testkit/local-rgw.js';
import { writeSyntheticBackups } from '../testkit/synthetic-backups.js';
import { SuiteScope, tempDir, writeSecretFile } from '../testkit/fixtures.js';
import { REPO_ROOT } from '../testkit/processes.js';
import { Stack } from '../testkit/stack.js';
import { percentile } from './support.js';

const execFileAsync = promisify(execFile);
const MANY = Number(process.env.BENCH_SCALE_BACKUPS ?? 10_000);
const FEW = 10;
const BACKUPS_MEASURED = 5;
const LISTINGS_MEASURED = 40;
const LATEST_MEASURED = 5;

/** An HTTP proxy in front of the RGW that counts requests by kind. The Host header passes unchanged, so SigV4 still verifies. */
class CountingProxy {
  readonly counts = new Map<string, number>();
  private constructor(private readonly server: http.Server) {}

  static async start(target: string): Promise<CountingProxy> {
    const upstream = new URL(target);
    const agent = new http.Agent({ keepAlive: true });
    let proxy: CountingProxy | undefined;
    const server = http.createServer((req, res) => {
      proxy?.count(req);
      const forward = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => res.destroy());
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new CountingProxy(server);
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Requests by kind since `since` (a snapshot from `snapshot()`). */
  since(since: Map<string, number>): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [kind, n] of this.counts) if (n - (since.get(kind) ?? 0) > 0) out[kind] = n - (since.get(kind) ?? 0);
    return out;
  }

  snapshot(): Map<string, number> {
    return new Map(this.counts);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private count(req: http.IncomingMessage): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname.split('/').filter(Boolean);
    const kind =
      req.method === 'GET' && path.length <= 1 && url.searchParams.has('list-type') ? 'LIST'
      : req.method === 'GET' && path.length <= 1 && url.searchParams.has('uploads') ? 'LIST-UPLOADS'
      : req.method === 'GET' && path.length <= 1 && url.searchParams.has('location') ? 'GET-LOCATION'
      : req.method === 'POST' && url.searchParams.has('delete') ? 'DELETE-MANY'
      : req.method === 'POST' || (req.method === 'PUT' && url.searchParams.has('partNumber')) ? 'MULTIPART'
      : `${req.method}-OBJECT`;
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }
}

const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);
const perRun = (counts: Record<string, number>, runs: number): Record<string, number> => Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / runs]));
const median = (values: number[]): number => percentile(values, 50);

interface Figures {
  backups: number;
  backupMs: number;
  backupRequests: Record<string, number>;
  listP50Ms: number;
  listP99Ms: number;
  listRequests: Record<string, number>;
  latestMs: number;
  latestRequests: Record<string, number>;
}

async function measure(stack: Stack, proxy: CountingProxy, rgw: RgwCluster, bucket: string, backups: number, cliEnv: Record<string, string>): Promise<Figures> {
  const saved = await stack.request('PUT', '/admin/api/backup/config', {
    body: { endpoint: proxy.endpoint, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey, sse: 'none', retention: { keepAll: true } },
  });
  if (saved.status !== 200) throw new Error(`saving the destination: ${saved.status} ${JSON.stringify(saved.body)}`);
  const backupOnce = async (): Promise<number> => {
    const started = performance.now();
    const run = await stack.request<BackupResult>('POST', '/admin/api/backup/run');
    if (run.status !== 200) throw new Error(`backup: ${run.status} ${JSON.stringify(run.body)}`);
    return performance.now() - started;
  };
  const listOnce = async (): Promise<number> => {
    const started = performance.now();
    const listed = await stack.request('GET', '/admin/api/backup/objects?limit=50');
    if (listed.status !== 200) throw new Error(`listing: ${listed.status} ${JSON.stringify(listed.body)}`);
    return performance.now() - started;
  };
  const latestOnce = async (): Promise<number> => {
    const started = performance.now();
    await execFileAsync(process.execPath, [join(REPO_ROOT, 'apps/cli/dist/main.js'), 'list', '--latest', '--bucket', bucket], { env: { ...process.env, ...cliEnv } });
    return performance.now() - started;
  };

  // One of each first, not measured: the worker learns the spacing of this destination and reads the newest page's sidecars once.
  await backupOnce();
  await listOnce();

  let before = proxy.snapshot();
  const backupMs: number[] = [];
  for (let i = 0; i < BACKUPS_MEASURED; i += 1) backupMs.push(await backupOnce());
  const backupRequests = perRun(proxy.since(before), BACKUPS_MEASURED);

  before = proxy.snapshot();
  const listMs: number[] = [];
  for (let i = 0; i < LISTINGS_MEASURED; i += 1) listMs.push(await listOnce());
  const listRequests = perRun(proxy.since(before), LISTINGS_MEASURED);

  before = proxy.snapshot();
  const latestMs: number[] = [];
  for (let i = 0; i < LATEST_MEASURED; i += 1) latestMs.push(await latestOnce());
  const latestRequests = perRun(proxy.since(before), LATEST_MEASURED);

  return { backups, backupMs: median(backupMs), backupRequests, listP50Ms: median(listMs), listP99Ms: percentile(listMs, 99), listRequests, latestMs: median(latestMs), latestRequests };
}

function row(label: string, few: number, many: number, unit: string, digits = 0): string {
  return `| ${label} | ${few.toFixed(digits)} ${unit} | ${many.toFixed(digits)} ${unit} | ${(many / few).toFixed(2)} |`;
}

async function main(): Promise<void> {
  const scope = new SuiteScope();
  try {
    const rgw = await startRgw();
    scope.after(() => rgw.stop());
    const proxy = await CountingProxy.start(rgw.endpoint);
    scope.after(() => proxy.close());
    const s3 = minioClient(rgw);
    const [fewBucket, manyBucket] = [await createTestBucket(rgw), await createTestBucket(rgw)];
    const hourly = { prefix: 'prod/', newest: new Date(Date.now() - 3600_000), spacingMs: 3600_000, verifiedEvery: 24 };
    await writeSyntheticBackups(s3, fewBucket, { ...hourly, count: FEW - 1 });
    const filling = performance.now();
    await writeSyntheticBackups(s3, manyBucket, { ...hourly, count: MANY - 1 });
    console.log(`wrote ${MANY - 1} synthetic backups in ${((performance.now() - filling) / 1000).toFixed(1)} s`);

    // The demo's state (25 users, 400 components), as `npm run demo` seeds it.
    const stack = await Stack.start(scope, { users: 25, components: 400 });
    const secretDir = await tempDir(scope, 'chango-bench-cli');
    const cliEnv = {
      CHANGO_S3_ENDPOINT: proxy.endpoint,
      CHANGO_S3_REGION: rgw.region,
      CHANGO_S3_PREFIX: 'prod/',
      CHANGO_S3_ACCESS_KEY: rgw.accessKey,
      CHANGO_S3_SECRET_KEY_FILE: await writeSecretFile(secretDir, rgw.secretKey, 's3-secret'),
    };
    const few = await measure(stack, proxy, rgw, fewBucket, FEW, cliEnv);
    const many = await measure(stack, proxy, rgw, manyBucket, MANY, cliEnv);

    const lines = [
      `| figure | ${FEW} backups | ${MANY.toLocaleString('en')} backups | ratio |`,
      '|---|---|---|---|',
      row('backup of the demo state (api call → committed, retention pass included), median of 5', few.backupMs, many.backupMs, 'ms'),
      row('S3 requests per backup', total(few.backupRequests), total(many.backupRequests), '', 1),
      row('`GET /objects?limit=50` p50 (40 calls)', few.listP50Ms, many.listP50Ms, 'ms', 1),
      row('`GET /objects?limit=50` p99', few.listP99Ms, many.listP99Ms, 'ms', 1),
      row('S3 requests per `GET /objects` page', total(few.listRequests), total(many.listRequests), '', 1),
      row('`chango-backup list --latest` (a fresh process), median of 5', few.latestMs, many.latestMs, 'ms'),
      row('S3 requests per `list --latest`', total(few.latestRequests), total(many.latestRequests), '', 1),
    ];
    console.log(`\n${lines.join('\n')}\n`);
    console.log('requests per backup by kind:', { [FEW]: few.backupRequests, [MANY]: many.backupRequests });
    console.log('requests per listing page by kind:', { [FEW]: few.listRequests, [MANY]: many.listRequests });
    console.log('requests per list --latest by kind:', { [FEW]: few.latestRequests, [MANY]: many.latestRequests });
    await mkdir(join(REPO_ROOT, 'bench/out'), { recursive: true });
    await writeFile(join(REPO_ROOT, 'bench/out/scale.json'), `${JSON.stringify({ few, many, measuredAt: new Date().toISOString() }, null, 2)}\n`);
  } finally {
    await scope.run();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
