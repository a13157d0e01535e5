/**
 * Where a fault lands. A phase is seen the moment the worker reports it — on the worker's own
 * Redis link (a fault proxy in pass mode used as a tap): the progress report carries
 * `"phase":"<name>"`. Polling the api would miss the short phases (commit and done last
 * milliseconds); the tap cannot. A tap's action runs synchronously while the report is on its
 * way, so the worker never gets the answer to it before the fault: for `done`, the job can
 * never complete first. After a fault, the case still confirms through the api that the job's
 * phase was the one aimed at (a fault in the wrong phase fails the case as a harness error).
 */
import type { FaultProxy } from '../testkit/fault-proxy.js';
import { settleWithin } from '../testkit/fixtures.js';
import type { CaseScope } from './scope.js';
import { POLL_MS } from './settings.js';
import { jobView, pollUntil } from './service.js';
import type { Stack } from '../testkit/stack.js';

export type Phase = 'checkpoint' | 'upload' | 'commit' | 'done' | 'verify' | 'copy';

/**
 * Follows the phases the worker reports on its Redis link. `current` is the last phase it
 * reported (what the job was doing when a fault landed); `when(phase, action)` resolves at the
 * report of `phase`, running `action` synchronously at that moment.
 */
export class PhaseWatcher {
  current: Phase | undefined;
  private readonly waiters: { phase: Phase; action?: () => void; resolve: () => void }[] = [];
  private readonly tails = new Map<number, string>();
  private readonly untap: () => void;

  /** A watcher on a world's Redis tap, stopped with the case (`who` names the cases that need the tap, for the error). */
  static start(redisTap: FaultProxy | undefined, scope: CaseScope, who: string): PhaseWatcher {
    if (!redisTap) throw new Error(`${who} need the Redis tap`);
    const watcher = new PhaseWatcher(redisTap);
    scope.after(() => watcher.stop(), 'stop phase watcher');
    return watcher;
  }

  constructor(redisTap: FaultProxy) {
    this.untap = redisTap.tap(({ direction, connection, chunk }) => {
      if (direction !== 'up') return;
      // Keep each connection's last bytes: a report may straddle two chunks.
      const seen = (this.tails.get(connection) ?? '') + chunk.toString('latin1');
      this.tails.set(connection, seen.slice(-64));
      for (const m of seen.matchAll(/"phase":"([a-z]+)"/g)) this.reported(m[1] as Phase);
    });
  }

  when(phase: Phase, action?: () => void): Promise<void> {
    return new Promise((resolve) => this.waiters.push({ phase, ...(action ? { action } : {}), resolve }));
  }

  stop(): void {
    this.untap();
  }

  private reported(phase: Phase): void {
    this.current = phase;
    for (const waiter of [...this.waiters]) {
      if (waiter.phase !== phase) continue;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.action?.();
      waiter.resolve();
    }
  }
}

/**
 * The commit marker being written: the answer to the sidecar PUT (`PUT …tar.gz.sha256`) is on
 * its way back from S3 — the sidecar is stored, the worker does not know it yet. `action` runs
 * synchronously then, before the answer is forwarded. Resolves with the archive's key.
 */
export function onSidecarStored(s3Proxy: FaultProxy, action?: () => void): Promise<string> {
  const request = /^PUT \/[^/\s]+\/(\S+)\.sha256 HTTP\/1\.1\r\n/;
  return new Promise((resolve) => {
    const sidecarConnections = new Map<number, string>();
    const untap = s3Proxy.tap(({ direction, connection, chunk }) => {
      if (direction === 'up') {
        // A request line starts a chunk (the client writes its headers in one go).
        const key = request.exec(chunk.subarray(0, 1024).toString('latin1'))?.[1];
        if (key?.endsWith('.tar.gz')) sidecarConnections.set(connection, decodeURIComponent(key));
        return;
      }
      const key = sidecarConnections.get(connection);
      if (key === undefined) return;
      if (!chunk.subarray(0, 16).toString('latin1').startsWith('HTTP/1.1 2')) return;
      untap();
      action?.();
      resolve(key);
    });
  });
}

/** Resolves once `bytes` more have gone through the proxy in `direction` (counted from the call). */
export async function afterBytes(proxy: FaultProxy, direction: 'up' | 'down', bytes: number, boundMs: number): Promise<boolean> {
  const base = proxy.stats()[direction].forwarded;
  return (await pollUntil(async () => (proxy.stats()[direction].forwarded - base >= bytes ? true : undefined), boundMs, 20)) ?? false;
}

/** Polls the job until its phase is `phase` (for cases without a Redis tap, and long phases). */
export async function whenJobPhase(stack: Stack, jobId: string, phase: Phase, boundMs: number): Promise<boolean> {
  return (
    (await pollUntil(
      async () => {
        const job = await jobView(stack, jobId);
        if (job === 'unknown' || job === undefined) return undefined;
        if (job.state === 'completed' || job.state === 'failed') return false;
        return job.progress?.phase === phase ? true : undefined;
      },
      boundMs,
      POLL_MS / 2,
    )) === true
  );
}

/** `promise`, or an error naming `what` once `boundMs` passed. */
export function within<T>(promise: Promise<T>, boundMs: number, what: string): Promise<T> {
  return settleWithin(promise, boundMs, `${what}: not within ${Math.round(boundMs / 1000)} s`);
}
