import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { newToken } from '@chango/security';
import { newRootSecret, tempDir, writeSecretFile, type CleanupScope } from './fixtures.js';
import { SAFETY_NET_MS } from './liveness.js';
import { API, RunningProcess, WORKER, WORKER_ENV, runCli } from './processes.js';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * A whole chango-backup on this machine, as an operator would run it: a seeded
 * data dir, a root secret file, a tokens file, the real worker and api
 * processes, real Redis under a prefix of its own (removed afterwards).
 */
export class Stack {
  worker!: RunningProcess;
  api!: RunningProcess;
  /** Workers of further master hosts (addWorker), by node id. */
  readonly others = new Map<string, RunningProcess>();
  baseUrl = '';
  readonly responses: string[] = [];

  private constructor(
    readonly dir: string,
    readonly dataDir: string,
    readonly secretFile: string,
    readonly rootSecret: string,
    readonly tokensFile: string,
    readonly adminToken: string,
    readonly viewerToken: string,
    readonly prefix: string,
    readonly env: Record<string, string>,
    private readonly sharedRedis: boolean,
  ) {}

  /** Seeds a data dir and starts the worker and the api. `env` adds or overrides settings of both. */
  static async start(
    t: CleanupScope,
    options: {
      users?: number;
      components?: number;
      env?: Record<string, string>;
      apiEnv?: Record<string, string>;
      /** An already seeded data dir and the root secret it was made with (seeding is then skipped). */
      existing?: { dataDir: string; rootSecret: string };
      /**
       * false: the stack's Redis is the test's own (a Redis Sentinel set in `env`, thrown away with the test), so stop()
       * leaves the shared REDIS_URL alone; redisDump() is then not available. Default true.
       */
      sharedRedis?: boolean;
    } = {},
  ): Promise<Stack> {
    const dir = await tempDir(t, 'chango-stack');
    const dataDir = options.existing?.dataDir ?? join(dir, 'data');
    const rootSecret = options.existing?.rootSecret ?? newRootSecret();
    const secretFile = await writeSecretFile(dir, rootSecret);
    const admin = newToken('test-admin', 'admin');
    const viewer = newToken('test-viewer', 'viewer');
    const tokensFile = join(dir, 'tokens');
    await writeFile(tokensFile, `# test tokens\n${admin.line}\n${viewer.line}\n`, { mode: 0o600 });
    const prefix = `chango-test-${randomBytes(4).toString('hex')}`;
    const env = {
      CHANGO_DATA_DIR: dataDir,
      CHANGO_ROOT_SECRET_FILE: secretFile,
      CHANGO_API_TOKENS_FILE: tokensFile,
      CHANGO_QUEUE_PREFIX: prefix,
      REDIS_URL,
      HOST: '127.0.0.1',
      PORT: '0',
      CHANGO_NODE_ID: `node-${prefix}`,
      ...options.env,
    };
    const stack = new Stack(dir, dataDir, secretFile, rootSecret, tokensFile, admin.token, viewer.token, prefix, env, options.sharedRedis ?? true);
    t.after(() => stack.stop());
    if (!options.existing) {
      const seeded = await runCli(['state', 'seed', '--users', String(options.users ?? 4), '--components', String(options.components ?? 40)], env);
      if (seeded.code !== 0) throw new Error(`seeding failed: ${seeded.stderr}`);
    }
    await stack.startWorker();
    stack.api = RunningProcess.start(API, { ...env, ...options.apiEnv });
    await stack.api.waitForOutput('api listening');
    stack.baseUrl = stack.api.listeningUrl();
    return stack;
  }

  async startWorker(extraEnv: Record<string, string> = {}): Promise<RunningProcess> {
    this.worker = RunningProcess.start(WORKER, { ...WORKER_ENV, ...this.env, ...extraEnv });
    await this.worker.waitForOutput('worker ready');
    return this.worker;
  }

  /**
   * Starts the worker of another master host on the same Redis prefix: its own
   * data dir (a copy of nothing: it starts empty and follows the destination)
   * and node id, the same root secret.
   */
  async addWorker(nodeId: string, extraEnv: Record<string, string> = {}): Promise<RunningProcess> {
    const worker = RunningProcess.start(WORKER, { ...WORKER_ENV, ...this.env, CHANGO_DATA_DIR: join(this.dir, `data-${nodeId}`), CHANGO_NODE_ID: nodeId, ...extraEnv });
    this.others.set(nodeId, worker);
    await worker.waitForOutput('worker ready');
    return worker;
  }

  /**
   * Calls the api; the token defaults to the admin's. Every response body is kept for secret checks.
   * A request is bounded by the safety net only (a run waits for its backup): poll with waitFor for anything timed.
   */
  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: { token?: string | null; body?: unknown; rawBody?: string; contentType?: string; timeoutMs?: number; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse<T>> {
    const token = options.token === undefined ? this.adminToken : options.token;
    const headers: Record<string, string> = { ...options.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (options.rawBody !== undefined || options.body !== undefined) {
      body = options.rawBody ?? JSON.stringify(options.body);
      headers['content-type'] = options.contentType ?? 'application/json';
    }
    const response = await fetch(this.baseUrl + path, { method, headers, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(options.timeoutMs ?? SAFETY_NET_MS) });
    const text = await response.text();
    this.responses.push(text);
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (metrics): keep the text
    }
    return { status: response.status, body: parsed as T, headers: response.headers };
  }

  /** Everything the processes printed and the api answered: where a secret must never show. */
  transcript(): string {
    const others = [...this.others.values()].flatMap((w) => [w.stdout, w.stderr]);
    return [this.worker.stdout, this.worker.stderr, ...others, this.api.stdout, this.api.stderr, ...this.responses].join('\n');
  }

  /** Every value stored in Redis under this stack's prefix (DUMP bytes), to look for secrets in. */
  async redisDump(): Promise<Buffer> {
    if (!this.sharedRedis) throw new Error('redisDump: this stack runs on a Redis of its own test (sharedRedis: false), not on REDIS_URL');
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${this.prefix}:*`);
      const dumps = await Promise.all(keys.map((key) => redis.dumpBuffer(key)));
      return Buffer.concat(dumps.filter((d): d is Buffer => d !== null));
    } finally {
      redis.disconnect();
    }
  }

  async stop(): Promise<void> {
    await Promise.all([this.api?.stop(), this.worker?.stop(), ...[...this.others.values()].map((w) => w.stop())]);
    if (this.sharedRedis) await deleteRedisPrefix(this.prefix);
  }
}

/** Deletes every Redis key under `prefix` (as an emptied Redis would be); returns how many there were. */
export async function deleteRedisPrefix(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL);
  try {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    return keys.length;
  } finally {
    redis.disconnect();
  }
}
