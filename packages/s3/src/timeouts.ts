import { integerSetting } from '@chango/contracts';
import { formatDuration } from '@chango/telemetry';

/**
 * How long an S3 exchange may take. minio-js sets no timeout of its own: a
 * destination that accepts the connection and then forwards nothing would
 * leave a call pending forever. Every BackupBucket call is bounded by these.
 */
export interface S3Timeouts {
  /** TCP connect, and the TLS handshake for https endpoints, must finish within this (CHANGO_S3_CONNECT_TIMEOUT_MS). */
  connectMs: number;
  /** A connection on which no byte moved in either direction for this long is destroyed (CHANGO_S3_IDLE_TIMEOUT_MS). */
  idleMs: number;
  /** Deadline of one call: stat, a listing, a small put or get, a delete (CHANGO_S3_CALL_TIMEOUT_MS). */
  callMs: number;
  /** Bulk transfers (archive upload and download) get max(callMs, size / this rate) (CHANGO_S3_MIN_BYTES_PER_SEC). */
  minBytesPerSec: number;
}

export const DEFAULT_S3_TIMEOUTS: Readonly<S3Timeouts> = Object.freeze({
  connectMs: 10_000,
  idleMs: 30_000,
  callMs: 120_000,
  minBytesPerSec: 256 * 1024,
});

/** The environment variable that sets each bound (named in error messages, so an operator knows what to change). */
export const S3_TIMEOUT_SETTINGS = {
  connectMs: 'CHANGO_S3_CONNECT_TIMEOUT_MS',
  idleMs: 'CHANGO_S3_IDLE_TIMEOUT_MS',
  callMs: 'CHANGO_S3_CALL_TIMEOUT_MS',
  minBytesPerSec: 'CHANGO_S3_MIN_BYTES_PER_SEC',
} as const satisfies Record<keyof S3Timeouts, string>;

/** Reads the S3 bounds from the environment (worker and CLI); a bad value is refused with the variable's name. */
export function s3TimeoutsFromEnv(env: NodeJS.ProcessEnv = process.env): S3Timeouts {
  return {
    connectMs: integerSetting(env, S3_TIMEOUT_SETTINGS.connectMs, DEFAULT_S3_TIMEOUTS.connectMs, 100, 600_000),
    idleMs: integerSetting(env, S3_TIMEOUT_SETTINGS.idleMs, DEFAULT_S3_TIMEOUTS.idleMs, 100, 3_600_000),
    callMs: integerSetting(env, S3_TIMEOUT_SETTINGS.callMs, DEFAULT_S3_TIMEOUTS.callMs, 100, 24 * 3_600_000),
    minBytesPerSec: integerSetting(env, S3_TIMEOUT_SETTINGS.minBytesPerSec, DEFAULT_S3_TIMEOUTS.minBytesPerSec, 1, 10 * 1024 ** 3),
  };
}

/** The bounds with any given values in place of the defaults. */
export function resolveS3Timeouts(given: Partial<S3Timeouts> = {}): S3Timeouts {
  const resolved = { ...DEFAULT_S3_TIMEOUTS };
  for (const name of Object.keys(S3_TIMEOUT_SETTINGS) as (keyof S3Timeouts)[]) {
    const value = given[name];
    if (value === undefined) continue;
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`S3 timeout ${name} must be a positive number, got ${value}`);
    resolved[name] = value;
  }
  return resolved;
}

/** Deadline of a bulk transfer of `bytes`: max(call timeout, bytes at the minimum rate). */
export function transferDeadlineMs(bytes: number, timeouts: S3Timeouts): number {
  return Math.max(timeouts.callMs, Math.ceil((bytes / timeouts.minBytesPerSec) * 1000));
}

/** Which bound ended an exchange. `transfer` is a bulk transfer's deadline (size at the minimum rate), `call` any other call's. */
export type S3Bound = 'connect' | 'idle' | 'call' | 'transfer';

/** The `code` of an S3TimeoutError (and of the S3Failure that reports it). */
export const S3_TIMEOUT_CODE = 'ChangoS3Timeout';

/**
 * A bound was hit: the socket (connect, idle) or the call (call, transfer)
 * was destroyed with this error. BackupBucket reports it as a transient
 * S3Failure naming the endpoint and the operation.
 */
export class S3TimeoutError extends Error {
  override readonly name = 'S3TimeoutError';
  readonly code = S3_TIMEOUT_CODE;
  constructor(
    readonly bound: S3Bound,
    /** The bound's length. */
    readonly ms: number,
    /** For `transfer`: the size and rate the deadline was derived from. */
    readonly transfer?: { bytes: number; minBytesPerSec: number },
  ) {
    super(`${describeBound(bound, ms, transfer)} (${settingOf(bound)})`);
  }

  /** The environment variable that sets the bound that was hit. */
  get setting(): string {
    return settingOf(this.bound);
  }
}

function settingOf(bound: S3Bound): string {
  switch (bound) {
    case 'connect':
      return S3_TIMEOUT_SETTINGS.connectMs;
    case 'idle':
      return S3_TIMEOUT_SETTINGS.idleMs;
    case 'call':
      return S3_TIMEOUT_SETTINGS.callMs;
    case 'transfer':
      return S3_TIMEOUT_SETTINGS.minBytesPerSec;
  }
}

function describeBound(bound: S3Bound, ms: number, transfer?: { bytes: number; minBytesPerSec: number }): string {
  switch (bound) {
    case 'connect':
      return `no connection within ${formatDuration(ms)}`;
    case 'idle':
      return `no byte moved for ${formatDuration(ms)}`;
    case 'call':
      return `not finished within ${formatDuration(ms)}`;
    case 'transfer':
      return `not finished within ${formatDuration(ms)}${transfer ? ` (${transfer.bytes} bytes at ${transfer.minBytesPerSec} B/s)` : ''}`;
  }
}
