import { WORKER_HEARTBEAT_EVERY_MS } from '@chango/contracts';

/**
 * How long the tests wait, and why. The rule: a test never fails on a
 * stopwatch. Every wait for something to happen derives from the interval
 * the system is configured to do it in (the leader lease, the job lock, the
 * heartbeat, the schedule's cron period, the retry backoff), with a generous
 * margin for a machine busy with other work; a wait with no interval behind
 * it (how long a backup or a drill takes) is a pure safety net against a hung
 * test, large, and named as such. Every wait is a poll that ends as soon as
 * its condition holds, so a generous bound costs nothing when things are
 * healthy: only a broken (or hung) test ever reaches one.
 *
 * A bound that is itself the feature under test (a leader replaced within
 * 4/3 of the lease, README "Operations") is asserted as documented, with
 * TIMER_SLACK_MS only, never as a multiple, and measured with the system's
 * own timestamps rather than the test's polling.
 */

/** How many times the interval it waits on a liveness wait allows: a CPU shared with other work stretches everything. */
export const LOAD_FACTOR = 10;

/**
 * Added once to every liveness wait, and the whole bound of a process start:
 * starting node, loading modules, opening RocksDB, connecting to Redis,
 * starting Chromium or Prometheus — on a machine busy with other work.
 */
export const PROCESS_START_MS = 60_000;

/**
 * Pure safety net for a wait with no configured interval behind it: a
 * backup's or a drill's own length, one HTTP request, a child process run to
 * completion. Only a hung test reaches it. 5 minutes is also undici's own
 * headers timeout, the longest a fetch() waits for an answer anyway.
 */
export const SAFETY_NET_MS = 5 * 60_000;

/**
 * What a loaded machine may add to a documented bound that is itself under
 * test: a timer firing late, a Redis round trip. Added, never multiplied:
 * the documented bound stays the assertion.
 */
export const TIMER_SLACK_MS = 1_000;

/**
 * Processes are SIGKILLed this long after a stop signal in teardown (stop()
 * without a grace). Their own bounds are shorter: the api exits 5 s after
 * SIGTERM whatever Redis does (apps/api/src/main.ts), the worker gives up its
 * lease within 2 s (leader-lease.ts). Teardown never fails a test; a test
 * that asserts a clean exit passes SAFETY_NET_MS instead.
 */
export const TEARDOWN_GRACE_MS = 2 * 5_000;

/** A liveness wait for something due within `intervalMs`: LOAD_FACTOR times the interval, plus the process-start allowance. */
export function withinLoad(intervalMs: number): number {
  return LOAD_FACTOR * intervalMs + PROCESS_START_MS;
}

/** A wait for something due within `intervalMs` that then does work of its own (a backup, a drill): withinLoad plus the safety net. */
export function withWork(intervalMs: number): number {
  return withinLoad(intervalMs) + SAFETY_NET_MS;
}

// --- the leader lease (CHANGO_LEADER_LEASE_MS, apps/worker/src/leader-lease.ts) -------------------

/** CHANGO_LEADER_LEASE_MS's default (README, apps/worker/src/config.ts). */
export const DEFAULT_LEADER_LEASE_MS = 15_000;

/** The lease a worker started with `env` runs with. */
export function leaseMsOf(env: Record<string, string | undefined>): number {
  return Number(env.CHANGO_LEADER_LEASE_MS ?? DEFAULT_LEADER_LEASE_MS);
}

/** How often the leader renews, the others try to take over, and a leader checks its own lease: a third of the lease (≥ 200 ms). */
export function renewalMs(leaseMs: number): number {
  return Math.max(200, Math.floor(leaseMs / 3));
}

/**
 * The documented bound (README "Operations"): a leader that stops, hangs or
 * cannot reach Redis is replaced (or steps down) within the lease plus one
 * renewal period, 4/3 of the lease. A new worker on an empty Redis leads
 * and sets the schedule at once; one that missed it is in by then too.
 */
export function leaseBound(leaseMs: number): number {
  return leaseMs + renewalMs(leaseMs);
}

// --- the job lock (CHANGO_JOB_LOCK_MS) and retries (CHANGO_BACKUP_BACKOFF_MS) -------------------

/**
 * A dead worker's job is taken over once its lock has run out and two stalled checks ran (BullMQ marks a
 * job at one and moves it at the next; stalledInterval = the lock): three locks, as the README says.
 */
export function jobLockBound(lockMs: number): number {
  return 3 * lockMs;
}

/** The delays between `attempts` attempts with exponential backoff from `backoffMs`: backoff × (1 + 2 + … + 2^(attempts−2)). */
export function backoffBound(backoffMs: number, attempts: number): number {
  return backoffMs * (2 ** Math.max(0, attempts - 1) - 1);
}

// --- the heartbeat and the destination replica (@chango/contracts) -------------------------------

/** Every worker adopts a destination saved on another host within one round of its replica, run every heartbeat (README: "within 5 s"). */
export const FOLLOWER_SYNC_MS = WORKER_HEARTBEAT_EVERY_MS;

// --- polling -------------------------------------------------------------------------------------

/**
 * Polls `probe` until it returns true or `timeoutMs` passes; says which. For
 * waits followed by the assertions that name what is missing (waitFor in
 * fixtures.ts throws instead).
 */
export async function settled(probe: () => Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
