import type { Readable } from 'node:stream';
import { HashingCounter } from '@chango/archive';
import { copyDestinationLabel, type BackupDestination, type CopyTarget, type S3CopyTarget, type VerificationRecord } from '@chango/contracts';

type DirectoryCopyTarget = Extract<CopyTarget, { type: 'directory' }>;
import { BackupBucket, expectedChecksum, type ArchiveFacts, type S3Timeouts } from '@chango/s3';
import { assertTheArchive, DirectoryArchives } from '@chango/directory-archives';
import { applyDirectoryRetention } from './directory-retention.js';
import { applyRetention, type RetentionContext } from './retention.js';

/**
 * Where a second copy goes: another S3 endpoint or bucket, or a local
 * directory. Either commits a copy as the primary commits a backup — the
 * bytes checked against the checksum the backup recorded, the `.sha256`
 * sidecar written last — and applies its own retention.
 */
export interface CopyStore {
  /** The target as a URL (the metrics' `destination` label): `<endpoint>/<bucket>/<prefix>` or `file://<path>`. */
  readonly destination: string;
  /**
   * Copies one archive: `source` must give exactly the bytes `facts` names.
   * Returns where the copy is. Anything short of a committed copy removes
   * what it wrote (or, for S3, leaves an incomplete upload to abort).
   */
  store(name: string, source: Readable, facts: ArchiveFacts): Promise<string>;
  /** The target's retention after a copy committed; returns what it removed (never `keep`). */
  retain(keep: string, ctx: Omit<RetentionContext, 'keep' | 'ledger'>): Promise<string[]>;
  /** Ends everything under way (a job's watchdog, SIGTERM). */
  abort(reason: Error): void;
  /** Where the copy of the backup named `name` (chango-….tar.gz) is at this target. */
  keyOf(name: string): string;
  /** The newest committed copy here (its key), or undefined. */
  newestComplete(): Promise<string | undefined>;
  /** Opens a copy for reading, with the checksum it must have or why it cannot be trusted. */
  open(key: string): Promise<CopyReadable>;
  /** Writes a drill's outcome beside the copy. */
  recordVerification(record: VerificationRecord): Promise<void>;
}

/** A copy opened for reading: its bytes, and the checksum its sidecar (and metadata) say it must have, or why not. */
export interface CopyReadable {
  stream: Readable;
  expected: { sha256: string } | { problem: string };
}

/** The copy target's store; S3 calls bounded like the primary's. */
export function openCopyStore(target: CopyTarget, options: { partBytes?: number; s3Timeouts: S3Timeouts }): CopyStore {
  return target.type === 's3' ? new S3CopyStore(target, options) : new DirectoryCopyStore(target);
}

class S3CopyStore implements CopyStore {
  readonly destination: string;
  private readonly bucket: BackupBucket;

  constructor(target: S3CopyTarget, options: { partBytes?: number; s3Timeouts: S3Timeouts }) {
    this.bucket = new BackupBucket(copyAsDestination(target), { ...(options.partBytes ? { partBytes: options.partBytes } : {}), timeouts: options.s3Timeouts });
    this.destination = copyDestinationLabel(target);
  }

  async store(name: string, source: Readable, facts: ArchiveFacts): Promise<string> {
    const key = this.bucket.destination.prefix + name;
    // An attempt that committed and then died (before the job recorded it) is done: never copied twice.
    if ((await this.bucket.readSidecar(key)) === facts.sha256) {
      source.destroy();
      return key;
    }
    // What an interrupted attempt left (an incomplete multipart upload, an uncommitted object) goes first:
    // minio-js could otherwise resume a stale multipart upload of the same key.
    await this.bucket.discard(key);
    const counted = new HashingCounter();
    source.once('error', (err) => counted.destroy(err));
    try {
      await this.bucket.upload(key, source.pipe(counted), facts);
      // Bytes that differ mean the primary's archive changed after the backup committed (damaged or altered).
      assertTheArchive(counted, facts, 'the archive read from the primary destination');
      await this.bucket.commit(key, facts);
      return key;
    } catch (err) {
      source.destroy();
      await this.bucket.discard(key).catch(() => undefined);
      throw err;
    }
  }

  async retain(keep: string, ctx: Omit<RetentionContext, 'keep' | 'ledger'>): Promise<string[]> {
    // The copy's deletions and count are its own: the primary's counters and inventory stay the primary's.
    const outcome = await applyRetention(this.bucket, { ...ctx, keep, ledger: { recordRetentionDeletions: async () => undefined, recordRetentionKeptLocked: async () => undefined, recordInventory: async () => undefined } });
    return outcome.deleted;
  }

  abort(reason: Error): void {
    this.bucket.abortInFlight(reason);
  }

  keyOf(name: string): string {
    return this.bucket.destination.prefix + name;
  }

  async newestComplete(): Promise<string | undefined> {
    return (await this.bucket.newestComplete())?.key;
  }

  async open(key: string): Promise<CopyReadable> {
    const archive = await this.bucket.open(key);
    return { stream: archive.stream, expected: expectedChecksum(archive) };
  }

  recordVerification(record: VerificationRecord): Promise<void> {
    return this.bucket.recordVerification(record);
  }
}

class DirectoryCopyStore implements CopyStore {
  readonly destination: string;
  private readonly archives: DirectoryArchives;
  private readonly retention: DirectoryCopyTarget['retention'];

  constructor(target: DirectoryCopyTarget) {
    this.archives = new DirectoryArchives(target.path);
    this.retention = target.retention;
    this.destination = copyDestinationLabel(target);
  }

  store(name: string, source: Readable, facts: ArchiveFacts): Promise<string> {
    return this.archives.store(name, source, facts);
  }

  async retain(keep: string, ctx: Omit<RetentionContext, 'keep' | 'ledger'>): Promise<string[]> {
    if (!(await ctx.lease.confirm())) return [];
    const removed = await applyDirectoryRetention(this.archives, this.retention, keep).catch((err: unknown) => {
      ctx.log.error({ destination: this.destination, err: (err as Error).message }, 'retention at the copy failed: old copies were left in place (the new one is committed)');
      return [];
    });
    for (const path of removed) ctx.log.info({ destination: this.destination, path }, 'retention: deleted copy');
    return removed;
  }

  abort(reason: Error): void {
    this.archives.abort(reason);
  }

  keyOf(name: string): string {
    return name;
  }

  async newestComplete(): Promise<string | undefined> {
    return (await this.archives.newestComplete())?.key;
  }

  async open(key: string): Promise<CopyReadable> {
    const archive = await this.archives.open(key);
    const expected = archive.sidecarSha256 ? { sha256: archive.sidecarSha256 } : { problem: `${archive.path} has no sidecar: the copy never committed, so it is not a backup` };
    return { stream: archive.stream, expected };
  }

  recordVerification(record: VerificationRecord): Promise<void> {
    return this.archives.recordVerification(record.key, record);
  }
}

/** The S3 copy as the destination BackupBucket works with: no schedule, no encryption of its own (the archive is already as stored). */
export function copyAsDestination(target: S3CopyTarget): BackupDestination {
  const { type: _type, ...location } = target;
  return { ...location, objectLock: target.objectLock ?? null, schedule: null, timezone: 'UTC', encryption: null, copy: null };
}
