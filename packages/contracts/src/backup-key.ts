/**
 * Object keys of backups: `<prefix>chango-<YYYYMMDDTHHMMSSZ>-<uuid v4>.tar.gz`,
 * or `….tar.gz.age` for an archive encrypted to offline age recipients.
 * The timestamp is UTC and sorts lexically; the uuid makes every attempt's key
 * new (minio-js would otherwise resume a stale multipart upload of the same key).
 * The sidecar `<key>.sha256` holds the archive's checksum in `sha256sum` format
 * and is written last: it is the commit marker of a whole backup.
 */
const KEY_PATTERN = /^chango-(\d{8}T\d{6}Z)-([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})\.tar\.gz(\.age)?$/;

export const SIDECAR_SUFFIX = '.sha256';
/** `<key>.verify.json`: the last restore drill of the archive (a VerificationRecord). */
export const VERIFY_SUFFIX = '.verify.json';

export function backupTimestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** The suffix an encrypted archive's key gains: what `age -d` reads. */
export const ENCRYPTED_SUFFIX = '.age';

export function makeBackupKey(prefix: string, date: Date, backupId: string, options: { encrypted?: boolean } = {}): string {
  return `${prefix}chango-${backupTimestamp(date)}-${backupId}.tar.gz${options.encrypted ? ENCRYPTED_SUFFIX : ''}`;
}

export interface ParsedBackupKey {
  key: string;
  timestamp: Date;
  backupId: string;
  /** Whether the key names an archive encrypted to offline age recipients (`.tar.gz.age`). */
  encrypted: boolean;
}

/** Parses a key under `prefix`; undefined for anything that is not one of our archives. */
export function parseBackupKey(prefix: string, key: string): ParsedBackupKey | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const match = KEY_PATTERN.exec(key.slice(prefix.length));
  if (!match?.[1] || !match[2]) return undefined;
  const t = match[1];
  const timestamp = new Date(`${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}Z`);
  return Number.isNaN(timestamp.getTime()) ? undefined : { key, timestamp, backupId: match[2], encrypted: match[3] !== undefined };
}

/** Whether `key` ends in one of our archive names (whatever its prefix): what the api can check before the worker, which knows the prefix. */
export function looksLikeBackupKey(key: string): boolean {
  return KEY_PATTERN.test(key.slice(key.lastIndexOf('/') + 1));
}

export function sidecarKey(key: string): string {
  return key + SIDECAR_SUFFIX;
}

export function verifyRecordKey(key: string): string {
  return key + VERIFY_SUFFIX;
}

/** The sidecar's body: `sha256sum` output for the archive's file name, so `sha256sum -c` works on a download. */
export function sidecarBody(key: string, sha256: string): string {
  return `${sha256}  ${key.slice(key.lastIndexOf('/') + 1)}\n`;
}

/** The checksum in a sidecar body, or undefined if it is not one. */
export function parseSidecar(body: string): string | undefined {
  return /^([0-9a-f]{64}) {2}\S+\n?$/.exec(body)?.[1];
}
