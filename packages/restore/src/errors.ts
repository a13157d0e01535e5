/**
 * Why a restore (or the reading of an archive) was refused. Each error carries
 * a stable `code` for programs (the CLI maps them to exit codes and words, the
 * worker to a drill result) and a message written for an operator at 3 a.m.:
 * what is wrong, which entry or file, and what to do. Messages never contain
 * secret material: entry names and checksums only, never file contents.
 */
export type RestoreErrorCode =
  /** The whole .tar.gz's SHA-256 differs from the expected one (the sidecar's). */
  | 'ARCHIVE_CHECKSUM_MISMATCH'
  /** gzip or tar cannot be read: truncated, a damaged byte, not gzip at all; or its age encryption does not authenticate. */
  | 'ARCHIVE_CORRUPT'
  /** The archive is encrypted to offline age recipients and no identity was given to open it. */
  | 'ARCHIVE_ENCRYPTED'
  /** None of the age identities given is a recipient of the encrypted archive. */
  | 'IDENTITY_MISMATCH'
  /** An entry that could write outside the target or is not a plain file or folder of a store. */
  | 'ARCHIVE_UNSAFE_ENTRY'
  /** The first entry is not manifest.json, or it does not parse or has the wrong shape. */
  | 'MANIFEST_MISSING'
  /** The archive's files and the manifest disagree: size, SHA-256, missing, extra or duplicate. */
  | 'MANIFEST_MISMATCH'
  /** The restored stores hold other record counts than the manifest says. */
  | 'RECORD_COUNT_MISMATCH'
  /** A process (the worker) holds the target data dir's stores. */
  | 'STORES_IN_USE'
  /** Another restore into the same data dir holds its restore lock. */
  | 'RESTORE_IN_PROGRESS'
  /** The data dir or target cannot be used (not a folder, not empty, staging not creatable, unknown owner…). */
  | 'TARGET_INVALID';

export class RestoreError extends Error {
  override readonly name = 'RestoreError';
  constructor(
    readonly code: RestoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isRestoreError(err: unknown, code?: RestoreErrorCode): err is RestoreError {
  return err instanceof RestoreError && (code === undefined || err.code === code);
}

/** An unknown thrown value as an Error, so the first-failure bookkeeping has one type to hold. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * An archive-supplied name, quoted for a message: JSON escaping turns control
 * characters and terminal escapes into visible text, so a hostile entry name
 * cannot rewrite the operator's screen; long names are cut.
 */
export function quoteName(name: string): string {
  const shown = name.length > 200 ? `${name.slice(0, 200)}…` : name;
  return JSON.stringify(shown);
}
