import type { ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { settleWithin, tempDir, waitFor, type CleanupScope } from './fixtures.js';
import { PROCESS_START_MS, withinLoad } from './liveness.js';
import { freeLoopbackPort } from './ports.js';
import { spawnTiedToThisProcess } from './processes.js';

/** The longest one command to one server may take, connection included (see `ask`). */
const ASK_BOUND_MS = 5_000;

/**
 * A throwaway Redis Sentinel deployment on loopback, made of real processes: a
 * master, one replica and three `redis-sentinel` (Debian's redis-sentinel
 * package, scripts/debian-deps.sh), quorum 2. The servers and the sentinels
 * have passwords (from files, as an operator would give them to chango-backup).
 * No persistence (`--save ''`, no AOF): a killed server is never restarted here,
 * the data lives on through replication, which is what a failover tests.
 * Every process runs under `setpriv --pdeathsig KILL`, so it dies with the test
 * process, and is SIGKILLed on cleanup.
 */
export interface SentinelTimings {
  /** down-after-milliseconds: how long the master must not answer before a sentinel calls it down. */
  downAfterMs: number;
  /** failover-timeout: a failover that has not completed in this is tried again by another sentinel. */
  failoverTimeoutMs: number;
}

/** How often sentinels say hello to each other and ask the master's INFO (Redis's fixed periods): 2 s and 10 s. */
const SENTINEL_HELLO_MS = 2_000;
const SENTINEL_INFO_MS = 10_000;

interface Server {
  name: string;
  port: number;
  child: ChildProcess;
  cmd: string;
  args: string[];
}

export class RedisSentinelSet {
  readonly masterName = 'chango-test';
  private readonly servers: Server[] = [];

  private constructor(
    readonly dir: string,
    readonly timings: SentinelTimings,
    readonly redisPassword: string,
    readonly sentinelPassword: string,
    readonly redisPasswordFile: string,
    readonly sentinelPasswordFile: string,
  ) {}

  static async start(t: CleanupScope, timings: SentinelTimings): Promise<RedisSentinelSet> {
    const dir = await tempDir(t, 'chango-sentinel');
    const redisPassword = `redis-pw-${Math.random().toString(36).slice(2)}`;
    const sentinelPassword = `sentinel-pw-${Math.random().toString(36).slice(2)}`;
    const redisPasswordFile = join(dir, 'redis-password');
    const sentinelPasswordFile = join(dir, 'sentinel-password');
    await writeFile(redisPasswordFile, `${redisPassword}\n`, { mode: 0o600 });
    await writeFile(sentinelPasswordFile, `${sentinelPassword}\n`, { mode: 0o600 });
    const set = new RedisSentinelSet(dir, timings, redisPassword, sentinelPassword, redisPasswordFile, sentinelPasswordFile);
    t.after(() => set.stop());
    await set.startAll();
    return set;
  }

  /** The sentinels' ports, in start order. */
  sentinelPorts: number[] = [];
  /** The port of the master the set started with. */
  firstMasterPort = 0;
  /** The port of the replica the set started with. */
  firstReplicaPort = 0;

  /** The settings that point chango-backup at this set: sentinels, master name, both password files. */
  env(): Record<string, string> {
    return {
      REDIS_SENTINELS: this.sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
      REDIS_SENTINEL_MASTER: this.masterName,
      REDIS_PASSWORD_FILE: this.redisPasswordFile,
      REDIS_SENTINEL_PASSWORD_FILE: this.sentinelPasswordFile,
    };
  }

  /** The master's port as sentinel `index` sees it now. */
  async masterPortSeenBy(index = 0): Promise<number> {
    const answer = (await this.ask(this.sentinelPorts[index] as number, this.sentinelPassword, ['sentinel', 'get-master-addr-by-name', this.masterName])) as [string, string] | null;
    if (!answer) throw new Error(`sentinel ${index} does not know master ${this.masterName}`);
    return Number(answer[1]);
  }

  /** The role (master or slave) the server on `port` reports itself. */
  async roleOf(port: number): Promise<string> {
    const role = (await this.ask(port, this.redisPassword, ['role'])) as [string, ...unknown[]];
    return role[0];
  }

  /**
   * Resolves once every write made so far on the master at `port` has reached a replica (Redis's WAIT).
   * Replication is asynchronous: a replica that has just finished its full sync may still hold the
   * writes made since in its master's buffer (streaming starts with its first REPLCONF ACK, up to 1 s
   * later), so a master killed in that gap takes them with it. A test that means to kill a master
   * without losing what it wrote waits for this first.
   */
  async replicated(port: number): Promise<void> {
    await waitFor(`the writes on the Redis master on port ${port} to reach its replica`, async () => {
      const replicas = (await this.ask(port, this.redisPassword, ['wait', '1', '1000'])) as number;
      return replicas >= 1 ? true : undefined;
    }, withinLoad(SENTINEL_INFO_MS), 100);
  }

  /** SIGKILLs the server on `port` (the master, in the test): no goodbye, as a node that dies. */
  kill(port: number): void {
    const server = this.servers.find((s) => s.port === port);
    if (!server) throw new Error(`no Redis of this set on port ${port}`);
    server.child.kill('SIGKILL');
  }

  /**
   * Starts the killed server on `port` again, as it was first started; the sentinels turn it into a
   * replica of the master they promoted. Resolves once it is one, in sync, every sentinel counts it, and
   * the master's writes reach it (`replicated`).
   */
  async restart(port: number): Promise<void> {
    const server = this.servers.find((s) => s.port === port);
    if (!server) throw new Error(`no Redis of this set on port ${port}`);
    if (server.child.exitCode === null && server.child.signalCode === null) throw new Error(`the Redis on port ${port} still runs`);
    this.servers.splice(this.servers.indexOf(server), 1);
    this.spawn(server.name, server.cmd, server.args, port);
    await waitFor(`the Redis on port ${port} to be a replica again, in sync, known to every sentinel`, async () => {
      const info = (await this.ask(port, this.redisPassword, ['info', 'replication'])) as string;
      if (!/role:slave/.test(info) || !/master_link_status:up/.test(info)) return undefined;
      for (const sentinel of this.sentinelPorts) {
        const replicas = (await this.ask(sentinel, this.sentinelPassword, ['sentinel', 'replicas', this.masterName])) as string[][];
        const entry = replicas.map((flat) => new Map(flat.flatMap((v, i) => (i % 2 === 0 ? [[v, flat[i + 1] as string] as const] : [])))).find((m) => m.get('port') === String(port));
        if (!entry || entry.get('flags') !== 'slave') return undefined;
      }
      return true;
    }, withinLoad(SENTINEL_INFO_MS + SENTINEL_HELLO_MS), 200);
    await this.replicated(await this.masterPortSeenBy());
  }

  /**
   * How long the sentinels take at most to promote the replica after the master dies: the master is
   * called down after down-after-milliseconds, a leader sentinel is elected and promotes within a
   * failover timeout; a second try (another sentinel, after failover-timeout) is allowed for.
   */
  failoverBound(): number {
    return this.timings.downAfterMs + 2 * this.timings.failoverTimeoutMs + SENTINEL_HELLO_MS;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.servers.map(async (s) => {
        if (s.child.exitCode !== null || s.child.signalCode !== null) return;
        const exited = new Promise((resolve) => s.child.once('exit', resolve));
        // Unref'd while running (a forgotten stop() does not hold the test process): held again until it is gone.
        s.child.ref();
        s.child.kill('SIGKILL');
        await exited;
      }),
    );
  }

  /** The output of one of the set's processes (for a failure's message). */
  async log(name: string): Promise<string> {
    return readFile(join(this.dir, `${name}.log`), 'utf8').catch(() => '');
  }

  private async startAll(): Promise<void> {
    const taken = new Set<number>();
    this.firstMasterPort = await freeLoopbackPort(taken);
    this.firstReplicaPort = await freeLoopbackPort(taken);
    for (let i = 0; i < 3; i++) this.sentinelPorts.push(await freeLoopbackPort(taken));
    const auth = ['--requirepass', this.redisPassword, '--masterauth', this.redisPassword];
    const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
    await mkdir(join(this.dir, 'master'));
    await mkdir(join(this.dir, 'replica'));
    this.spawn('master', 'redis-server', ['--port', String(this.firstMasterPort), '--dir', join(this.dir, 'master'), ...common, ...auth], this.firstMasterPort);
    this.spawn('replica', 'redis-server', ['--port', String(this.firstReplicaPort), '--dir', join(this.dir, 'replica'), '--replicaof', '127.0.0.1', String(this.firstMasterPort), ...common, ...auth], this.firstReplicaPort);
    await waitFor('the replica to be in sync with the master', async () => {
      const info = (await this.ask(this.firstReplicaPort, this.redisPassword, ['info', 'replication'])) as string;
      return /master_link_status:up/.test(info) ? true : undefined;
    }, PROCESS_START_MS, 100);

    for (const [i, port] of this.sentinelPorts.entries()) {
      const conf = join(this.dir, `sentinel-${i}.conf`);
      // The file is the sentinel's own state: it rewrites it (known replicas, other sentinels, epochs).
      await writeFile(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${this.dir}`,
          `requirepass ${this.sentinelPassword}`,
          `sentinel sentinel-pass ${this.sentinelPassword}`,
          `sentinel monitor ${this.masterName} 127.0.0.1 ${this.firstMasterPort} 2`,
          `sentinel auth-pass ${this.masterName} ${this.redisPassword}`,
          `sentinel down-after-milliseconds ${this.masterName} ${this.timings.downAfterMs}`,
          `sentinel failover-timeout ${this.masterName} ${this.timings.failoverTimeoutMs}`,
          `sentinel parallel-syncs ${this.masterName} 1`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      this.spawn(`sentinel-${i}`, 'redis-sentinel', [conf], port);
    }
    // Each sentinel learns the replica from the master's INFO and the other two from their hellos.
    await waitFor('every sentinel to know the replica and the two other sentinels', async () => {
      for (const port of this.sentinelPorts) {
        const flat = (await this.ask(port, this.sentinelPassword, ['sentinel', 'master', this.masterName])) as string[];
        const fields = new Map<string, string>();
        for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i] as string, flat[i + 1] as string);
        if (fields.get('num-other-sentinels') !== '2' || fields.get('num-slaves') !== '1') return undefined;
      }
      return true;
    }, withinLoad(SENTINEL_INFO_MS + SENTINEL_HELLO_MS), 200);
  }

  private spawn(name: string, cmd: string, args: string[], port: number): void {
    const child = spawnTiedToThisProcess(cmd, args, join(this.dir, `${name}.log`));
    child.on('error', (err) => process.stderr.write(`Redis sentinel set: cannot start ${cmd}: ${err.message}\n`));
    process.once('exit', () => child.kill('SIGKILL'));
    this.servers.push({ name, port, child, cmd, args });
  }

  /**
   * One command to one server, on a connection of its own that does not retry (a dead server fails
   * at once), within ASK_BOUND_MS whatever happens: ioredis's connect() was seen to never settle
   * when a server that was just started closed the connection before it was ready, and the test
   * then waited for ever.
   */
  private async ask(port: number, password: string, command: string[]): Promise<unknown> {
    const redis = new Redis({ host: '127.0.0.1', port, password, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 2_000, commandTimeout: 2_000, enableOfflineQueue: false });
    redis.on('error', () => undefined);
    const answer = async (): Promise<unknown> => {
      await redis.connect();
      return redis.call(command[0] as string, ...command.slice(1));
    };
    try {
      return await settleWithin(answer(), ASK_BOUND_MS, `no answer from the Redis on port ${port} to ${command.join(' ')} within ${ASK_BOUND_MS} ms`);
    } finally {
      redis.disconnect();
    }
  }
}

