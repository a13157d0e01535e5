/**
 * A Redis of a chaos case's own, so a case can stop and restart it without touching the shared
 * Redis on 6379 that other tests (and engineers) use. `redis-server` on a free loopback port with
 * its own folder, either without persistence (`--save "" --appendonly no`: a restart comes back
 * empty) or with it (`--appendonly yes --appendfsync always`: every acknowledged write survives
 * even SIGKILL). Stopped by signal and restarted on the same port, as a crashed or restarted
 * Redis would come back for clients configured with its address.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import type { CleanupScope } from '../testkit/fixtures.js';
import { tempDir } from '../testkit/fixtures.js';

/** How long redis-server may take to answer PING after a start (it starts in milliseconds). */
const START_BOUND_MS = 15_000;
/** How long it may take to exit after SIGTERM (a persistent one flushes its AOF) before SIGKILL. */
const STOP_BOUND_MS = 10_000;

export class OwnRedis {
  private child: ChildProcess | undefined;
  private log = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly persistent: boolean,
  ) {}

  static async start(t: CleanupScope, options: { persistent: boolean }): Promise<OwnRedis> {
    const dir = await tempDir(t, 'chango-chaos-redis');
    const redis = new OwnRedis(dir, await freePort(), options.persistent);
    t.after(() => redis.stop('SIGKILL'));
    await redis.startProcess();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stops it with `signal` and waits for the exit (SIGKILL after STOP_BOUND_MS). */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_BOUND_MS);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts it again on the same port and folder (with persistence it loads its AOF). */
  async restart(): Promise<void> {
    if (this.running) throw new Error('own Redis: still running');
    await this.startProcess();
  }

  private async startProcess(): Promise<void> {
    const persistence = this.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', ''] : ['--save', '', '--appendonly', 'no'];
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--daemonize', 'no', '--protected-mode', 'yes', ...persistence];
    // setpriv: killed with us even if we are SIGKILLed (as the RGW test cluster's daemons are).
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'redis-server', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.log = (this.log + chunk).slice(-4000)));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.log = (this.log + chunk).slice(-4000)));
    child.unref();
    this.child = child;
    const deadline = Date.now() + START_BOUND_MS;
    while (!(await answersPing(this.port))) {
      if (!this.running) throw new Error(`own Redis exited at start: ${this.log}`);
      if (Date.now() > deadline) throw new Error(`own Redis on ${this.port} did not answer PING within ${START_BOUND_MS} ms: ${this.log}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One PING over a raw socket (no client library retries to second-guess). */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => done(chunk.toString().startsWith('+PONG')));
  });
}
