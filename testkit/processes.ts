import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROCESS_START_MS, SAFETY_NET_MS, TEARDOWN_GRACE_MS } from './liveness.js';

const execFileAsync = promisify(execFile);
export const REPO_ROOT = join(import.meta.dirname, '..');
export const CLI = join(REPO_ROOT, 'apps/cli/dist/main.js');
export const WORKER = join(REPO_ROOT, 'apps/worker/dist/main.js');
export const API = join(REPO_ROOT, 'apps/api/dist/main.js');

/**
 * The environment the worker is installed with (the systemd unit's Environment=, the Dockerfile's
 * ENV, `npm run start:worker`), so the tests and benchmarks run it as operators do
 * (bench/README.md, issue 15, has the figures of each):
 * - glibc's mmap threshold fixed at 128 KiB. Without it glibc raises the threshold each time a
 *   large buffer is freed, the archive's MiB-sized buffers then come from the main heap, and the
 *   heap keeps their pages after a backup;
 * - two malloc arenas, not one per thread that ever allocated (the thread pool's, RocksDB's):
 *   each arena keeps what it freed;
 * - a V8 young generation of 2 × 4 MiB instead of growing to 2 × 16 MiB, which it does during a
 *   backup's streaming and keeps.
 * test/integration/systemd-units.test.ts checks that the three places say the same.
 */
export const WORKER_ENV = { MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_ARENA_MAX: '2', NODE_OPTIONS: '--max-semi-space-size=4' } as const;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment for a child: ours without any root secret or systemd credentials (a test run by a systemd unit), plus `extra`. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.CHANGO_ROOT_SECRET;
  delete env.CHANGO_ROOT_SECRET_FILE;
  delete env.CREDENTIALS_DIRECTORY;
  delete env.CHANGO_DATA_DIR;
  return { ...env, ...extra };
}

/** Runs the built `chango-backup` CLI to completion. */
export async function runCli(args: string[], env: Record<string, string>): Promise<RunResult> {
  return runNode(CLI, args, env);
}

/** Runs a node script to completion; one still running after the safety net is killed (code -1), so a test never hangs on it. */
export async function runNode(script: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [script, ...args], {
      env: childEnv(env),
      maxBuffer: 64 * 1024 * 1024,
      timeout: SAFETY_NET_MS,
      killSignal: 'SIGKILL',
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A long-running child with its output collected as it comes. */
export class RunningProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
    // Never outlive the test process.
    process.once('exit', () => child.kill('SIGKILL'));
  }

  static start(script: string, env: Record<string, string>): RunningProcess {
    return new RunningProcess(spawn(process.execPath, [script], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /**
   * Resolves once stdout contains `text`; rejects if the process exits first or `timeoutMs` passes.
   * The default bounds a process start ('worker ready', 'api listening'): pass a bound derived from
   * the interval it waits on for anything later.
   */
  async waitForOutput(text: string, timeoutMs = PROCESS_START_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes(text)) {
      if (this.child.exitCode !== null) throw new Error(`process exited (${this.child.exitCode}) before printing "${text}": ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for "${text}"; stdout so far: ${this.stdout}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The base URL an api process announced in its 'api listening' log line (it may listen on port 0). */
  listeningUrl(): string {
    const [, scheme, port] = /"url":"(https?):\/\/127\.0\.0\.1:(\d+)"/.exec(this.stdout) ?? [];
    if (!scheme || !port) throw new Error(`no 'api listening' line with a URL in: ${this.stdout}`);
    return `${scheme}://127.0.0.1:${port}`;
  }

  /**
   * The time (ms since the epoch, the process's own clock) of its first JSON log line whose
   * message contains `text`: when it did something, not when the test noticed.
   */
  loggedAt(text: string): number | undefined {
    for (const line of this.stdout.split('\n')) {
      if (!line.includes(text)) continue;
      try {
        const entry = JSON.parse(line) as { msg?: string; time?: number };
        if (entry.msg?.includes(text) && typeof entry.time === 'number') return entry.time;
      } catch {
        // not a JSON log line
      }
    }
    return undefined;
  }

  /**
   * Sends `signal`; a process still running after `graceMs` is killed, so a test never hangs on it.
   * The default is for teardown; a test that asserts a clean exit passes SAFETY_NET_MS.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = TEARDOWN_GRACE_MS): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Runs Debian's `ldb` (rocksdb-tools) — an independent reader of our RocksDB files. */
export async function ldb(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('ldb', args, { maxBuffer: 256 * 1024 * 1024, timeout: SAFETY_NET_MS });
  return stdout;
}

/**
 * Starts a server a test needs (a Ceph daemon, Redis, a sentinel) under
 * `setpriv --pdeathsig KILL`, which execs it (same PID) with PR_SET_PDEATHSIG:
 * it dies with this process, even one that is SIGKILLed. Its output is
 * appended to `logFile`; unref'd, so a test file that forgets to stop it
 * still exits (the caller's exit hook kills it).
 */
export function spawnTiedToThisProcess(cmd: string, args: string[], logFile: string): ChildProcess {
  const out = openSync(logFile, 'a');
  try {
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', cmd, ...args], { stdio: ['ignore', out, out] });
    child.unref();
    return child;
  } finally {
    closeSync(out);
  }
}
