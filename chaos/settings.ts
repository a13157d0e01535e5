/**
 * The service settings every chaos case runs with, and every bound the harness waits by — all
 * derived from those settings, so a change here moves every wait with it. The intervals are
 * short (so a case ends in reasonable time) but the bounds carry a wide margin (MARGIN): the
 * suite has to give the same verdicts with both cores busy.
 */

import { SHARED_SETTING_DEFAULTS } from '@chango/contracts';

export const MiB = 1024 * 1024;

/** What the worker and api run with (environment variables of both). */
export const SERVICE = {
  jobLockMs: 2_000,
  leaderLeaseMs: 3_000,
  backoffMs: 500,
  attempts: 3,
  /** Short S3 bounds, so a case with a silent destination ends in seconds (the scheduled-defaults case keeps the defaults). */
  s3IdleTimeoutMs: 3_000,
  s3ConnectTimeoutMs: 2_000,
  s3CallTimeoutMs: 10_000,
  gzipLevel: 9,
  partBytes: 5 * MiB,
} as const;

/**
 * The state a case backs up: 8000 components make ≈ 26 MiB of stores and a ≈ 15 MiB archive at
 * gzip 9 — three 5 MiB parts, a checkpoint of ≈ 0.2 s and an upload (archiving as it goes) on an idle
 * 2-core machine, long enough to land a fault inside them.
 */
export const STATE = { users: 20, components: 8_000 } as const;
/** An upper estimate of STATE's archive (≈ 15 MiB at gzip 9): what a link slowed on purpose has to carry. */
export const ARCHIVE_ESTIMATE_BYTES = 16 * MiB;

/** How long STATE's archive takes on a link of `bytesPerSecond`: what a case aiming through a slowed link adds to its bounds. */
export function archiveTransferMs(bytesPerSecond: number): number {
  return (ARCHIVE_ESTIMATE_BYTES / bytesPerSecond) * 1000;
}

/**
 * The small-work-dir case: a state of ≈ 100 MiB (the checkpoint alone needs more than the 20 MiB
 * tmpfs), archived at gzip 1 so the successful backup after the remount stays quick.
 */
export const BIG_STATE = { users: 20, components: 35_000, gzipLevel: 1, tmpfsSmall: '20m', tmpfsLarge: '400m' } as const;

/** Link rates the S3 proxy is set to while a fault is aimed (bytes per second). */
export const RATES = {
  /** Upload while aiming at "mid-upload": ≈ 7 s for the archive. */
  upload: 2 * MiB,
  /** Upload during the Redis outage: the upload must outlast the 10 s outage. */
  uploadThroughRedisOutage: 1 * MiB,
  /** Download of a drill while aiming at "mid-read-back". */
  readBack: 2 * MiB,
  /** The "slowed" fault itself: progress never stops (no idle timeout), but a 5 MiB part takes minutes. */
  slowFault: 16 * 1024,
} as const;

/** Fault placement. */
export const AIM = {
  /**
   * checkpoint: the kill lands this long after the worker reported the phase. Since the checkpoint
   * ends without a compaction (issue 15) STATE's copy lasts ≈ 0.2 s idle: 150 ms missed it once.
   */
  afterPhaseStartMs: 40,
  /** "mid-upload": one part acknowledged and the next one in flight. */
  uploadBytes: SERVICE.partBytes + 1 * MiB,
  /** "mid-upload" for the Redis outage: early, so the rest of the upload outlasts the outage. */
  uploadBytesRedis: 1 * MiB,
  /** "mid-read-back": this much of the archive downloaded by the drill. */
  readBackBytes: 1 * MiB,
  /** stall-after: bytes let through once the stall is set. */
  stallBytes: 64 * 1024,
} as const;

/** How long an S3 fault is held before the proxy goes back to pass: long enough for the idle timeout to fire twice and a connect timeout once. */
export const FAULT_HOLD_MS = 2 * SERVICE.s3IdleTimeoutMs + SERVICE.s3ConnectTimeoutMs;
/** The Redis outage (issue 9: "stopped for 10 s"). */
export const REDIS_OUTAGE_MS = 10_000;
/** A worker sent SIGTERM must be gone within this (issue 9). */
export const SIGTERM_EXIT_MS = 30_000;

/** Factor on every computed bound: room for two busy cores. */
export const MARGIN = 2;

/**
 * One whole backup of STATE through a healthy link: ≈ 3 s measured on an idle 2-core machine
 * (checkpoint, upload, commit), taken ×5 for busy cores and a cold start.
 */
export const BACKUP_ESTIMATE_MS = 15_000;

/** Every backoff between `retry.attempts` attempts, exponential from `retry.backoffMs` (BullMQ's exponential backoff). */
export function backoffTotalMs(retry: { attempts: number; backoffMs: number } = SERVICE): number {
  return Array.from({ length: retry.attempts - 1 }, (_, i) => retry.backoffMs * 2 ** i).reduce((a, b) => a + b, 0);
}

/**
 * One attempt at most: a backup's work plus one S3 call cut at its deadline (an attempt fails at
 * its first call that hangs), plus `extraMs` for a link slowed on purpose.
 */
export function attemptBoundMs(extraMs = 0): number {
  return BACKUP_ESTIMATE_MS + SERVICE.s3CallTimeoutMs + extraMs;
}

/**
 * From the fault to "no job active or waiting": the fault held, a dead worker's lock expiring
 * and one stalled check (2 × lock), a new leader (4/3 lease), every retry's backoff, and every
 * attempt at its bound — all × MARGIN.
 */
export function settleBoundMs(faultMs = 0, extraMs = 0): number {
  const detection = 2 * SERVICE.jobLockMs + Math.ceil((SERVICE.leaderLeaseMs * 4) / 3);
  return MARGIN * (faultMs + detection + backoffTotalMs() + SERVICE.attempts * attemptBoundMs() + extraMs);
}

/** The backup after the fault, through a healthy link: every attempt and backoff, × MARGIN. */
export function nextBackupBoundMs(extraMs = 0): number {
  return MARGIN * (backoffTotalMs() + SERVICE.attempts * attemptBoundMs(extraMs));
}

/** Waiting for a phase to come up after the run was queued: a whole backup's time, × MARGIN. */
export function phaseBoundMs(extraMs = 0): number {
  return MARGIN * (BACKUP_ESTIMATE_MS + extraMs);
}

/** Polling period of the job views. */
export const POLL_MS = 100;

/** The shipped retry defaults (README configuration table): what a case run with `defaultBounds` gets. */
export const DEFAULT_RETRY = SHARED_SETTING_DEFAULTS.retry;

/**
 * Environment of worker and api in every case. `defaultBounds` leaves the S3 bounds and the
 * retries at the shipped defaults (the scheduled-defaults case checks the README's numbers).
 */
export function serviceEnv(overrides: { gzipLevel?: number; defaultBounds?: boolean } = {}): Record<string, string> {
  const shortened: Record<string, string> = overrides.defaultBounds
    ? {}
    : {
        CHANGO_BACKUP_BACKOFF_MS: String(SERVICE.backoffMs),
        CHANGO_BACKUP_ATTEMPTS: String(SERVICE.attempts),
        CHANGO_S3_IDLE_TIMEOUT_MS: String(SERVICE.s3IdleTimeoutMs),
        CHANGO_S3_CONNECT_TIMEOUT_MS: String(SERVICE.s3ConnectTimeoutMs),
        CHANGO_S3_CALL_TIMEOUT_MS: String(SERVICE.s3CallTimeoutMs),
      };
  return {
    CHANGO_JOB_LOCK_MS: String(SERVICE.jobLockMs),
    CHANGO_LEADER_LEASE_MS: String(SERVICE.leaderLeaseMs),
    ...shortened,
    CHANGO_GZIP_LEVEL: String(overrides.gzipLevel ?? SERVICE.gzipLevel),
    CHANGO_S3_PART_BYTES: String(SERVICE.partBytes),
    // No schedule is set in any case; drills run only when a case asks for one.
    CHANGO_VERIFY_SCHEDULED: 'false',
  };
}

/** The settings as a table for docs/reliability.md. */
export function describeSettings(): [string, string][] {
  return [
    ['CHANGO_JOB_LOCK_MS', String(SERVICE.jobLockMs)],
    ['CHANGO_LEADER_LEASE_MS', String(SERVICE.leaderLeaseMs)],
    ['CHANGO_BACKUP_BACKOFF_MS', String(SERVICE.backoffMs)],
    ['CHANGO_BACKUP_ATTEMPTS', String(SERVICE.attempts)],
    ['CHANGO_S3_IDLE_TIMEOUT_MS', String(SERVICE.s3IdleTimeoutMs)],
    ['CHANGO_S3_CONNECT_TIMEOUT_MS', String(SERVICE.s3ConnectTimeoutMs)],
    ['CHANGO_S3_CALL_TIMEOUT_MS', String(SERVICE.s3CallTimeoutMs)],
    ['CHANGO_GZIP_LEVEL', `${SERVICE.gzipLevel} (small work dir: ${BIG_STATE.gzipLevel})`],
    ['CHANGO_S3_PART_BYTES', String(SERVICE.partBytes)],
    ['s3-blackhole-scheduled-defaults', `S3 bounds and retries at their defaults (attempts ${DEFAULT_RETRY.attempts}, backoff ${DEFAULT_RETRY.backoffMs} ms, idle 30 s, connect 10 s, call 2 min); schedule every 20 s`],
    ['state', `${STATE.components} components, ${STATE.users} users (small work dir: ${BIG_STATE.components} components on a ${BIG_STATE.tmpfsSmall} tmpfs, then ${BIG_STATE.tmpfsLarge})`],
    ['S3 fault held', `${FAULT_HOLD_MS} ms`],
    ['Redis outage', `${REDIS_OUTAGE_MS} ms`],
    ['link while aiming', `upload ${RATES.upload} B/s, through Redis outage ${RATES.uploadThroughRedisOutage} B/s, read-back ${RATES.readBack} B/s; "slowed" fault ${RATES.slowFault} B/s`],
    [
      'fault placement',
      `checkpoint: ${AIM.afterPhaseStartMs} ms after the phase report; upload: ${AIM.uploadBytes} B in (Redis outage: ${AIM.uploadBytesRedis} B in); commit: as S3 answers the sidecar PUT; done: at the done report; read-back: ${AIM.readBackBytes} B into the drill's download; stall budget ${AIM.stallBytes} B`,
    ],
    [
      'bounds',
      `settle ${Math.round(settleBoundMs() / 1000)} s after a kill or SIGTERM, ${Math.round(settleBoundMs(FAULT_HOLD_MS) / 1000)} s after an S3 fault (plus 2× what a slowed link adds); next backup ${Math.round(nextBackupBoundMs() / 1000)} s; SIGTERM exit ${SIGTERM_EXIT_MS / 1000} s; margin ×${MARGIN}`,
    ],
  ];
}
