/**
 * The world one chaos case runs in: a real Ceph RGW with a bucket of its own, a fault proxy in
 * front of it (the destination the service is configured with), a Stack (real worker and api
 * processes on a seeded data dir, a Redis prefix of their own — or a Redis of their own), the
 * worker's Redis link through a tap proxy, and the source's record counts to compare restores
 * with. Also what a supervisor would do: a worker that dies when no case killed it is noted
 * and started again, so the rest of the case still runs and says what it found.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as Minio from 'minio';
import { createTestBucket, minioClient, startRgw, type RgwCluster } from '../testkit/local-rgw.js';
import { FaultProxy } from '../testkit/fault-proxy.js';
import type { RunningProcess } from '../testkit/processes.js';
import { REPO_ROOT, runCli } from '../testkit/processes.js';
import { REDIS_URL, Stack, type ApiResponse } from '../testkit/stack.js';
import type { OwnRedis } from './own-redis.js';
import type { Redactor } from './redact.js';
import type { CaseScope } from './scope.js';
import { nextBackupBoundMs, serviceEnv, STATE } from './settings.js';
import { seededCopy } from './state-template.js';

export const PREFIX = 'chaos/';

/** What a world needs of the case run that makes it (a CaseContext is one): cleanups, redaction, a log, and where to leave itself. */
export interface WorldOwner {
  scope: CaseScope;
  redactor: Redactor;
  log(message: string): void;
  world?: World;
}

export interface WorldOptions {
  users?: number;
  components?: number;
  gzipLevel?: number;
  /** Worker and api use this Redis (no tap); otherwise the shared one, under the Stack's own prefix. */
  ownRedis?: OwnRedis;
  /** CHANGO_WORK_DIR; the default is the Stack's `<data>/.backup-work`. */
  workDir?: string;
  /** S3 bounds and retries at the shipped defaults instead of the suite's short ones (settings.ts). */
  defaultBounds?: boolean;
}

export class World {
  /** Every worker process this case started, oldest first (killed ones keep their logs here). */
  readonly workers: RunningProcess[] = [];
  /** Worker exits no case asked for, in words. */
  readonly unexpectedExits: string[] = [];
  /** Findings that contradict nothing but belong in the report. */
  readonly notes: string[] = [];
  /** Set by a case whose fault emptied Redis: the job history before it is gone by design. */
  redisDataLost = false;
  private expectedExit = new Set<RunningProcess>();

  private constructor(
    readonly redactor: Redactor,
    readonly scope: CaseScope,
    readonly rgw: RgwCluster,
    readonly bucket: string,
    /** The real RGW, not through the proxy: what is really at the destination. */
    readonly s3: Minio.Client,
    readonly s3Proxy: FaultProxy,
    readonly redisTap: FaultProxy | undefined,
    readonly stack: Stack,
    readonly workDir: string,
    readonly sourceStats: unknown,
  ) {}

  static async create(ctx: WorldOwner, options: WorldOptions = {}): Promise<World> {
    const { scope } = ctx;
    const t0 = Date.now();
    const rgw = await startRgw();
    scope.after(() => rgw.stop(), 'stop RGW');
    ctx.redactor.add(rgw.secretKey);
    const tRgw = Date.now();
    const bucket = await createTestBucket(rgw);
    const s3Proxy = await FaultProxy.start(rgw.endpoint);
    scope.after(() => s3Proxy.close(), 'close S3 proxy');
    const redisTap = options.ownRedis ? undefined : await FaultProxy.start(REDIS_URL);
    if (redisTap) scope.after(() => redisTap.close(), 'close Redis tap');

    const workerRedis = options.ownRedis?.url ?? redisTap?.url ?? REDIS_URL;
    const apiRedis = options.ownRedis?.url ?? REDIS_URL;
    const env: Record<string, string> = { ...serviceEnv({ gzipLevel: options.gzipLevel, defaultBounds: options.defaultBounds }), REDIS_URL: workerRedis };
    if (options.workDir) env.CHANGO_WORK_DIR = options.workDir;
    const stack = await Stack.start(
      { after: (fn) => scope.after(fn, 'stop stack') },
      {
        existing: await seededCopy(scope, options.users ?? STATE.users, options.components ?? STATE.components),
        env,
        // The api: straight to Redis (never through the tap), and a run waits no longer than a whole next backup may take.
        apiEnv: { REDIS_URL: apiRedis, CHANGO_RUN_WAIT_MS: String(nextBackupBoundMs()) },
      },
    );
    ctx.redactor.add(stack.rootSecret, stack.adminToken, stack.viewerToken);
    const t1 = Date.now();
    const workDir = options.workDir ?? join(stack.dataDir, '.backup-work');
    const put = await stack.request('PUT', '/admin/api/backup/config', {
      body: { endpoint: s3Proxy.url, region: rgw.region, bucket, prefix: PREFIX, accessKey: rgw.accessKey, secretKey: rgw.secretKey },
      timeoutMs: 60_000,
    });
    if (put.status !== 200) throw new Error(`PUT /admin/api/backup/config answered ${put.status}: ${JSON.stringify(put.body)}`);
    // After the config PUT: the destination is a record of the metadata store, and every backup from now on holds it.
    const stats = await runCli(['state', 'stats', '--json'], { CHANGO_DATA_DIR: stack.dataDir, CHANGO_ROOT_SECRET_FILE: stack.secretFile });
    if (stats.code !== 0) throw new Error(`state stats of the source failed: ${stats.stderr}`);
    const secs = (a: number, b: number) => Math.round((b - a) / 100) / 10;
    ctx.log(`world ready in ${secs(t0, Date.now())} s: RGW ${secs(t0, tRgw)} s, state copied and stack started ${secs(tRgw, t1)} s, config and source stats ${secs(t1, Date.now())} s`);
    const world = new World(ctx.redactor, scope, rgw, bucket, minioClient(rgw), s3Proxy, redisTap, stack, workDir, JSON.parse(stats.stdout));
    world.workers.push(stack.worker);
    ctx.world = world;
    return world;
  }

  get worker(): RunningProcess {
    return this.stack.worker;
  }

  /** Marks the current worker's coming exit as the case's doing (a kill, a SIGTERM). */
  expectExit(): void {
    this.expectedExit.add(this.stack.worker);
  }

  /** Starts a worker again (systemd's restart); the new process becomes stack.worker. */
  async restartWorker(): Promise<void> {
    const worker = await this.stack.startWorker();
    this.workers.push(worker);
  }

  /** A supervisor's round: a worker that died with no case asking is noted and restarted. Returns true if it restarted one. */
  async supervise(): Promise<boolean> {
    const w = this.stack.worker;
    if (w.child.exitCode === null && w.child.signalCode === null) return false;
    if (this.expectedExit.has(w)) return false;
    const why = deathWords(w.stderr);
    this.unexpectedExits.push(this.redactor.redact(`worker pid ${w.child.pid} exited (code ${w.child.exitCode}, signal ${w.child.signalCode})${why ? `: ${why}` : ''}`));
    this.expectedExit.add(w);
    await this.restartWorker();
    return true;
  }

  /** POST …/run?wait=false: the new (or running) job's id. */
  async startBackup(): Promise<string> {
    const res = await this.stack.request<{ jobId: string }>('POST', '/admin/api/backup/run?wait=false', { timeoutMs: 60_000 });
    if (res.status !== 202 && res.status !== 200) throw new Error(`POST /admin/api/backup/run?wait=false answered ${res.status}: ${this.redactor.redact(JSON.stringify(res.body))}`);
    return res.body.jobId;
  }

  /** POST …/run, waiting (bounded by the api's CHANGO_RUN_WAIT_MS, plus a margin for the answer itself). */
  async runBackup(): Promise<ApiResponse<Record<string, unknown>>> {
    return this.stack.request('POST', '/admin/api/backup/run', { timeoutMs: nextBackupBoundMs() + 60_000 });
  }

  /** Every worker's stdout, oldest first: what the workers logged (JSON lines). */
  workerLogs(): string {
    return this.workers.map((w) => w.stdout).join('\n');
  }

  /** Saves what the processes printed, secrets redacted, under test-artifacts/chaos/<name>/. */
  async saveLogs(name: string): Promise<string> {
    const dir = join(REPO_ROOT, 'test-artifacts', 'chaos', name);
    await mkdir(dir, { recursive: true });
    const files: [string, string][] = [
      ...this.workers.flatMap((w, i): [string, string][] => [
        [`worker-${i + 1}.stdout.log`, w.stdout],
        [`worker-${i + 1}.stderr.log`, w.stderr],
      ]),
      ['api.stdout.log', this.stack.api?.stdout ?? ''],
      ['api.stderr.log', this.stack.api?.stderr ?? ''],
    ];
    for (const [file, text] of files) await writeFile(join(dir, file), this.redactor.redact(text));
    return dir;
  }
}

/** The line of a dead process's stderr that says why: its error, else its last line. */
export function deathWords(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const error = lines.find((l) => /error|fatal|cannot start/i.test(l) && !/^at /.test(l));
  return (error ?? lines.pop() ?? '').slice(0, 300);
}
