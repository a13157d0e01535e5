import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import type { Client } from 'minio';
import {
  objectLockOf,
  parseBackupKey,
  parseSidecar,
  sidecarBody,
  sidecarKey,
  verifyRecordKey,
  type BackupDestination,
  type BackupObject,
  type ObjectLock,
  type VerificationRecord,
} from '@chango/contracts';
import { seekNewest, walkPage, type ListedArchive, type ListedObject, type ListRequest, type SeekHint, type SeekRequest, type SeekResult, type WalkPage } from './archive-listing.js';
import { CallScope, createBoundedAgent, runInScope, type BoundedAgent } from './bounded-agent.js';
import { createS3Client, sseHeaders, UPLOAD_PART_BYTES } from './client.js';
import { describeS3Error, S3Failure } from './errors.js';
import { mapLimited } from './map-limited.js';
import { BoundedLru } from './bounded-lru.js';
import { contentMd5, objectLockHeaders, retainUntil, saysObjectLockEnabled } from './object-lock.js';
import { plainEtag, streamParts, type PartSink } from './streamed-upload.js';
import { purgeVersions, type ObjectVersion, type PurgeOutcome, type Refusal } from './version-purge.js';
import { resolveS3Timeouts, S3TimeoutError, transferDeadlineMs, type S3Timeouts } from './timeouts.js';

/** User metadata on every archive (minio sends them as x-amz-meta-…; statObject gives them back without the prefix). */
export const META_SHA256 = 'chango-sha256';
export const META_BACKUP_ID = 'chango-backup-id';

/** A page of backups, newest first, and the cursor of the next (older) page: null when there is none. */
export interface BackupPage {
  objects: BackupObject[];
  next: string | null;
}

/** Sidecars and drill records read at most this many at a time while describing a page. */
const DESCRIBE_CONCURRENCY = 8;
/**
 * What a sidecar or drill record said, by where it lives and its ETag. A
 * sidecar is written once, when its backup commits, and a drill record only
 * when a drill runs again — either way its ETag changes with its content — so
 * what was read is good while the listing shows the same ETag; a new ETag is
 * a miss, and the new content is read (and checked) like the first.
 */
const rememberedSidecars = new BoundedLru<string | null>(20_000);
const rememberedRecords = new BoundedLru<VerificationRecord | null>(20_000);
/** Per destination: what the last seek learned (the time between its backups, whether they are few), where the next starts looking. */
const seekHints = new BoundedLru<SeekHint>(64);

export interface ArchiveFacts {
  size: number;
  sha256: string;
  backupId: string;
  /**
   * For an archive streamed in parts (uploadStreamed): the multipart ETag its
   * parts' MD5s give. The commit's proof is then this ETag on the stored
   * object, or a full read-back where the destination's ETags are not MD5s.
   * Without it (an upload of known bytes, with the checksum in the metadata),
   * the proof is the size and the metadata read back.
   */
  expectedEtag?: string;
}

/** How the commit proved the destination holds exactly the archive's bytes (logged with the backup). */
export type CommitProof = 'etag' | 'read-back' | 'metadata';

export interface BackupBucketOptions {
  /** Multipart part size (S3's minimum, 5 MiB, by default). */
  partBytes?: number;
  /** Bounds of every call; the defaults (DEFAULT_S3_TIMEOUTS) for any left out. */
  timeouts?: Partial<S3Timeouts>;
}

/** What retention's deletion of backups did (see BackupBucket.remove). */
export interface RemovalOutcome {
  /** Archives removed, with their sidecars and drill records. */
  deleted: string[];
  /** Archives Object Lock kept: the destination refused to delete a version of them as locked. Left whole. */
  locked: string[];
  /** Sidecars and drill records of deleted archives that are still locked: hidden behind a delete marker until their date passes. */
  lingering: string[];
  /** Archives the destination refused to delete for another reason, in words. */
  failed: { key: string; reason: string }[];
}

/** Whether a bucket has Object Lock enabled; when not, what the destination answered (for the words of the refusal). */
export type ObjectLockStatus = { enabled: true } | { enabled: false; answer: string };

/** Codes that say a version to delete is already gone (deleted meanwhile): nothing was refused. */
const ALREADY_GONE = new Set(['NoSuchKey', 'NoSuchVersion']);

/** How one call is made: whether its request carries the SSE header (a refusal then names SSE). */
interface CallOptions {
  carriesSse?: boolean;
  /** The call's own deadline (a part of an upload); the call timeout when left out. */
  deadline?: Deadline;
}

/** A deadline of one call, and the error it ends the call with. */
interface Deadline {
  ms: number;
  error: () => S3TimeoutError;
}

/** An archive opened for reading, with what the destination says about it. */
export interface OpenedArchive {
  key: string;
  /**
   * The object's bytes. Bounded: destroyed with a transient S3Failure when no
   * byte moved for the idle bound (a reader that stops reading counts too), or
   * when the download outlives max(call timeout, size at the minimum rate).
   */
  stream: Readable;
  size: number;
  /** The checksum in the object's user metadata (set at upload), if any. */
  metadataSha256: string | null;
  /** The checksum in the sidecar, if there is one (no sidecar: the backup never committed). */
  sidecarSha256: string | null;
}

/**
 * The checksum an opened archive must have, or why it cannot be trusted to
 * restore before a byte of it is read: it has no sidecar (never committed), or
 * the sidecar and the object's metadata name different checksums (one was
 * changed after the backup). The bytes read are then checked against it.
 */
export function expectedChecksum(archive: OpenedArchive): { sha256: string } | { problem: string } {
  if (!archive.sidecarSha256) return { problem: `${archive.key} has no sidecar (${sidecarKey(archive.key)}): the backup never committed, so it is not a backup` };
  if (archive.metadataSha256 && archive.metadataSha256 !== archive.sidecarSha256) {
    return { problem: `the sidecar of ${archive.key} says sha256 ${archive.sidecarSha256} but the object's metadata says ${archive.metadataSha256}: one of them was changed after the backup` };
  }
  return { sha256: archive.sidecarSha256 };
}

/**
 * Backups at one destination: upload an archive, commit it (read back, then
 * the sidecar written last), list, clean up. Every failure comes out as an
 * S3Failure with a message that names the endpoint, bucket and what we were doing.
 *
 * Every call is bounded (minio-js has no timeout of its own): the client's
 * own keep-alive agent bounds each connection (connect, idle), and each call
 * races its deadline — call timeout, or for the archive upload and download
 * max(call timeout, size at the minimum rate). A call past its deadline has
 * its requests destroyed, and any request it still tries is refused.
 */
export class BackupBucket {
  readonly client: Client;
  readonly timeouts: S3Timeouts;
  /** The client's transport agent: one per bucket, keep-alive, bounded. */
  readonly agent: BoundedAgent;
  /** Calls and download streams under way (what abortInFlight ends). */
  private readonly inFlight = new Set<CallScope>();
  /** Reasons given to abortInFlight: handed back to callers as they are. */
  private readonly abortReasons = new WeakSet<object>();
  private readonly partBytes: number;

  constructor(
    readonly destination: BackupDestination,
    options: BackupBucketOptions = {},
  ) {
    this.timeouts = resolveS3Timeouts(options.timeouts);
    this.agent = createBoundedAgent(destination.endpoint, this.timeouts);
    this.partBytes = options.partBytes ?? UPLOAD_PART_BYTES;
    this.client = createS3Client(destination, this.partBytes, this.agent);
  }

  get bucket(): string {
    return this.destination.bucket;
  }

  /** The destination's Object Lock, null when it has none. */
  get objectLock(): ObjectLock | null {
    return objectLockOf(this.destination);
  }

  /** Which backups these are (endpoint, bucket, prefix): what this process remembers of them is kept under it. */
  get destinationId(): string {
    return `${this.destination.endpoint}\u0000${this.bucket}\u0000${this.destination.prefix}`;
  }

  /**
   * Ends every call and download stream of this bucket now: each rejects (or
   * is destroyed) with `reason` as it is, and every connection of the agent is
   * closed. For a job's watchdog and for SIGTERM. Calls made afterwards work
   * (on new connections).
   */
  abortInFlight(reason: Error): void {
    this.abortReasons.add(reason);
    for (const scope of [...this.inFlight]) scope.end(reason);
    this.agent.destroyAll(reason);
  }

  /**
   * Uploads an archive whose size and checksum are known (a committed backup,
   * copied to the second target), with the checksum in its user metadata and the SSE header —
   * both sent when the upload starts, which is why the checksum must be known
   * before: a later server-side copy to add it is not something every S3 does
   * (Ceph RGW answers NotImplemented for encrypted objects).
   *
   * minio-js's putObject never settles when its source stream fails (minio-js
   * #1479), so it is raced against the source's error. Bounded by
   * max(call timeout, size at the minimum rate), and by the idle bound on
   * every part. A failed upload leaves its incomplete multipart upload: the
   * caller removes it with `discard` — or, when the destination stopped
   * answering, remembers it for later rather than wait on it a second time.
   */
  async upload(key: string, source: Readable, facts: ArchiveFacts): Promise<void> {
    let sourceError: Error | undefined;
    const sourceFailed = new Promise<never>((_, reject) =>
      source.once('error', (err: Error) => {
        sourceError = err;
        reject(err);
      }),
    );
    sourceFailed.catch(() => undefined);
    const metadata = {
      'Content-Type': this.contentTypeOf(key),
      [META_SHA256]: facts.sha256,
      [META_BACKUP_ID]: facts.backupId,
      ...sseHeaders(this.destination),
    };
    const operation = `uploading ${key}`;
    try {
      await this.scoped(operation, this.transferDeadline(facts.size), () =>
        Promise.race([this.client.putObject(this.bucket, key, source, facts.size, metadata), sourceFailed]),
      );
    } catch (err) {
      source.destroy();
      if (this.abortReasons.has(err as object)) throw err;
      // A failing local read is not an S3 problem: let it through as it is.
      throw sourceError !== undefined ? sourceError : this.failure(err, operation, { carriesSse: true });
    }
  }

  /**
   * Uploads an archive while it is being made (size and checksum not known
   * yet), in parts of `partBytes` with one part on the wire while the next
   * fills (see streamed-upload.ts). Each part carries its Content-MD5, so the
   * destination refuses a part that did not arrive whole. The checksum is
   * computed on the bytes as they leave and goes in the sidecar at the commit
   * (it cannot be in the object's metadata: that is sent before the first byte).
   *
   * Every request is bounded: the multipart initiation and completion by the
   * call timeout, each part by max(call timeout, part at the minimum rate),
   * and every socket by the idle bound. A failed upload leaves its incomplete
   * multipart upload, like `upload`: the caller removes it with `discard`.
   */
  async uploadStreamed(key: string, source: Readable, { backupId }: { backupId: string }): Promise<ArchiveFacts> {
    const headers = {
      'Content-Type': this.contentTypeOf(key),
      [`x-amz-meta-${META_BACKUP_ID}`]: backupId,
      ...sseHeaders(this.destination),
    };
    try {
      const uploadId = await this.call(`starting the multipart upload of ${key}`, () => this.client.initiateNewMultipartUpload(this.bucket, key, headers), { carriesSse: true });
      const sink: PartSink = {
        uploadPart: (partNumber, body, md5) =>
          this.call(
            `uploading part ${partNumber} of ${key}`,
            async () => {
              const sent = await this.client.uploadPart(
                { bucketName: this.bucket, objectName: key, uploadID: uploadId, partNumber, headers: { 'Content-Length': body.length, 'Content-MD5': md5.toString('base64') } },
                body,
              );
              return sent.etag;
            },
            { carriesSse: true, deadline: this.transferDeadline(body.length) },
          ),
      };
      const streamed = await streamParts(source, sink, { partBytes: this.partBytes });
      await this.call(`completing the multipart upload of ${key} (${streamed.parts.length} parts)`, () => this.client.completeMultipartUpload(this.bucket, key, uploadId, streamed.parts));
      return { size: streamed.size, sha256: streamed.sha256, backupId, expectedEtag: streamed.expectedEtag };
    } catch (err) {
      source.destroy();
      throw err;
    }
  }

  /** An age file is no gzip to anyone who downloads it: only `age -d` makes it one. */
  private contentTypeOf(key: string): string {
    return parseBackupKey(this.destination.prefix, key)?.encrypted ? 'application/octet-stream' : 'application/gzip';
  }

  /**
   * Makes an uploaded archive a backup: reads it back (size and stored
   * checksum must be what was sent), locks the version read back when the
   * destination has Object Lock (PutObjectRetention: see object-lock.ts for
   * why not headers on the upload), then writes the sidecar `<key>.sha256` —
   * last, as the commit marker, under the same lock. So every committed backup
   * is locked, and an attempt that fails before this point leaves an archive
   * that is not (its leftover can be deleted for real).
   */
  async commit(key: string, expected: ArchiveFacts): Promise<CommitProof> {
    const stored = await this.call(`reading back ${key}`, () => this.client.statObject(this.bucket, key));
    const proof = await this.proveStored(key, expected, stored);
    const lock = this.objectLock;
    if (lock) {
      const retention = { mode: lock.mode, retainUntilDate: retainUntil(lock, new Date()).toISOString(), ...(stored.versionId ? { versionId: stored.versionId } : {}) };
      await this.call(`locking ${key} (Object Lock ${lock.mode} for ${lock.days} days)`, () =>
        this.client.putObjectRetention(this.bucket, key, retention as Parameters<Client['putObjectRetention']>[2]),
      );
    }
    await this.putSmall(sidecarKey(key), sidecarBody(key, expected.sha256), 'text/plain', `writing the sidecar ${sidecarKey(key)}`);
    return proof;
  }

  /**
   * The cheapest proof that the object holds exactly the archive's bytes:
   * - streamed in parts: the ETag the destination computed from the bytes it
   *   stored equals the one the parts' MD5s give (S3 and Ceph RGW keep MD5
   *   ETags for unencrypted and SSE-S3 objects); where it does not (AWS gives
   *   SSE-KMS and SSE-C objects ETags that are no MD5), the object is read
   *   back whole and its SHA-256 compared — the only proof left;
   * - uploaded with the checksum in its metadata: size and metadata read back.
   */
  private async proveStored(key: string, expected: ArchiveFacts, stored: { size: number; etag: string; metaData: Record<string, string> }): Promise<CommitProof> {
    const mismatch = (found: string) =>
      new S3Failure('other', `reading ${key} back gave ${found}, but ${expected.size} bytes with checksum ${expected.sha256} were sent: the upload is not whole`, true, 'ReadBackMismatch');
    if (stored.size !== expected.size) throw mismatch(`${stored.size} bytes`);
    if (expected.expectedEtag === undefined) {
      if (stored.metaData[META_SHA256] !== expected.sha256) throw mismatch(`checksum ${stored.metaData[META_SHA256] ?? 'none'}`);
      return 'metadata';
    }
    if (plainEtag(stored.etag) === expected.expectedEtag) return 'etag';
    const download = await this.download(key, stored.size);
    const hash = createHash('sha256');
    for await (const chunk of download) hash.update(chunk as Buffer);
    const sha256 = hash.digest('hex');
    if (sha256 !== expected.sha256) throw mismatch(`checksum ${sha256} (its ETag ${plainEtag(stored.etag)}, not the parts' ${expected.expectedEtag})`);
    return 'read-back';
  }

  /**
   * One small object (a sidecar, a drill record) in one signed PUT, with the
   * SSE header, Content-MD5 and, when the destination has Object Lock, the
   * lock headers: minio-js's putObject would turn those into user metadata.
   */
  private async putSmall(objectKey: string, text: string, contentType: string, operation: string): Promise<void> {
    const body = Buffer.from(text);
    const lock = this.objectLock;
    const headers = {
      'Content-Type': contentType,
      'Content-MD5': contentMd5(body),
      ...sseHeaders(this.destination),
      ...(lock ? objectLockHeaders(lock, new Date()) : {}),
    };
    await this.call(
      operation,
      async () => {
        const response = await this.client.makeRequestAsync({ method: 'PUT', bucketName: this.bucket, objectName: objectKey, headers }, body);
        for await (const _chunk of response) {
          // drained: the call ends with the response
        }
      },
      { carriesSse: true },
    );
  }

  /**
   * Removes an archive, its sidecar, its drill record and any incomplete
   * multipart upload of it. Missing pieces are fine; a destination that does
   * not answer or refuses is not: that throws an S3Failure (after at most one
   * call timeout: both removals run at once, each bounded).
   *
   * With Object Lock, the versions are deleted (a delete by key would only add
   * a marker); a version still locked (the attempt failed after its archive
   * was locked) is not fought: it is hidden behind a delete marker and stays
   * until its retain-until date. Returns the keys left that way.
   */
  async discard(key: string): Promise<{ lockedVersionsLeft: string[] }> {
    const outcomes = await Promise.allSettled([
      this.call(`aborting the multipart upload of ${key}`, async () => {
        // minio's findUploadId gives the newest incomplete upload of the key; a backup never reuses one (a copy does: it discards first), so be thorough.
        for (let round = 0; round < 10; round += 1) {
          const uploadId = await this.client.findUploadId(this.bucket, key);
          if (!uploadId) return;
          await this.client.abortMultipartUpload(this.bucket, key, uploadId).catch((err: unknown) => {
            if ((err as { code?: unknown }).code !== 'NoSuchUpload') throw err;
          });
        }
      }),
      this.objectLock
        ? this.purge([key], 'hide').then((purged) => {
            const failed = purged.failed[0];
            if (failed) throw this.refusedDeletion(`deleting ${key} and its sidecar`, [failed.refusal], false);
            return [...purged.hidden, ...purged.lingering];
          })
        : this.call(`deleting ${key} and its sidecar`, async () => {
            const errors = await this.client.removeObjects(this.bucket, [key, sidecarKey(key), verifyRecordKey(key)]);
            const failed = errors.filter((e) => e && typeof e === 'object' && 'Code' in e && (e as { Code?: string }).Code !== 'NoSuchKey');
            if (failed.length > 0) throw new S3Failure('other', `deleting ${key} from bucket ${this.bucket}: the endpoint refused ${failed.length} deletion(s): ${JSON.stringify(failed).slice(0, 300)}`, false, 'DeleteFailed');
            return [];
          }),
    ]);
    const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    const removal = outcomes[1];
    return { lockedVersionsLeft: removal.status === 'fulfilled' ? removal.value : [] };
  }

  /**
   * Deletes backups for retention: each archive with its sidecar and drill
   * record. Only keys that parse as our archives under the prefix are
   * accepted — anything else is a bug upstream and is refused, not deleted.
   *
   * Without Object Lock: one DeleteObjects request by key; a refusal throws.
   * With it, the bucket is versioned and deleting by key would free nothing:
   * each backup's versions are listed (one request per backup) and deleted by
   * version id (version-purge.ts). One the destination refuses as locked is
   * kept whole and reported in `locked`, not as a failure.
   */
  async remove(keys: readonly string[]): Promise<RemovalOutcome> {
    const foreign = keys.filter((key) => !parseBackupKey(this.destination.prefix, key));
    if (foreign.length > 0) throw new Error(`refusing to delete objects that are not chango backups under '${this.destination.prefix}': ${foreign.join(', ')}`);
    if (keys.length === 0) return { deleted: [], locked: [], lingering: [], failed: [] };
    if (this.objectLock) {
      const purged = await this.purge(keys, 'keep');
      return {
        deleted: purged.deleted,
        locked: purged.locked,
        lingering: purged.lingering,
        failed: purged.failed.map(({ key, refusal }) => ({ key, reason: this.refusedDeletion(`deleting old backup ${key}`, [refusal], true).message })),
      };
    }
    const objects = keys.flatMap((key) => [key, sidecarKey(key), verifyRecordKey(key)]);
    const errors = await this.call(`deleting ${keys.length} old backup(s)`, () => this.client.removeObjects(this.bucket, objects));
    const failed = errors.filter((e) => e && typeof e === 'object' && 'Code' in e && (e as { Code?: string }).Code !== 'NoSuchKey');
    if (failed.length > 0) throw new S3Failure('other', `deleting old backups from bucket ${this.bucket}: the endpoint refused ${failed.length} deletion(s): ${JSON.stringify(failed).slice(0, 300)}`, true, 'DeleteFailed');
    return { deleted: [...keys], locked: [], lingering: [], failed: [] };
  }

  /** Every version of these backups deleted, each request a bounded call (see version-purge.ts). */
  private purge(keys: readonly string[], whenLocked: 'keep' | 'hide'): Promise<PurgeOutcome> {
    return purgeVersions(
      {
        versionsOf: (archiveKey) =>
          this.call(`listing the versions of ${archiveKey}`, async () => {
            // One request: a backup has three objects, each with a version or two; more than 1,000 is not ours to produce.
            const page = await this.client.listObjectsQuery(this.bucket, archiveKey, '', { Delimiter: '', MaxKeys: 1000, IncludeVersion: true });
            return (page.objects ?? []).flatMap((item): ObjectVersion[] => {
              const { name, versionId, isDeleteMarker } = item as { name?: string; versionId?: string; isDeleteMarker?: boolean };
              return name && versionId ? [{ key: name, versionId, deleteMarker: isDeleteMarker === true }] : [];
            });
          }),
        deleteVersions: (versions) =>
          this.call(`deleting ${versions.length} object version(s)`, async () =>
            refusalsOf(await this.client.removeObjects(this.bucket, versions.map((version) => ({ name: version.key, versionId: version.versionId })))),
          ),
        hide: (objectKeys) => this.call(`hiding ${objectKeys.length} locked object(s) behind delete markers`, async () => refusalsOf(await this.client.removeObjects(this.bucket, [...objectKeys]))),
      },
      keys,
      { siblingsOf: (key) => [sidecarKey(key), verifyRecordKey(key)], whenLocked },
    );
  }

  /** A deletion the destination refused, in words: a lock refusal says that it may also be a missing permission. */
  private refusedDeletion(operation: string, refusals: readonly Refusal[], retryable: boolean): S3Failure {
    const first = refusals[0];
    const what = first ? `${first.key}${first.versionId ? ` (version ${first.versionId})` : ''}: ${first.code}${first.message && first.message !== first.code ? ` ${first.message}` : ''}` : 'no reason given';
    return new S3Failure('other', `S3 endpoint ${this.destination.endpoint} refused ${operation} in bucket "${this.bucket}": ${what}`, retryable, first?.code ?? 'DeleteFailed');
  }

  /**
   * Whether the bucket has Object Lock enabled (GetObjectLockConfiguration),
   * bounded like every call. A bucket made without it answers with an error
   * (ObjectLockConfigurationNotFoundError on AWS, MinIO and RGW; other servers
   * differ, and some answers awscli cannot even parse): any answer other than
   * "Enabled" that is not a failure to reach or use the bucket (unreachable,
   * timeout, credentials, permission, no such bucket: those throw) counts as
   * not enabled, and the answer is given back for the words.
   */
  async objectLockStatus(): Promise<ObjectLockStatus> {
    try {
      // Its typings offer a void overload first (the callback form); the promise form is the one called.
      const read = this.client.getObjectLockConfig.bind(this.client) as (bucketName: string) => Promise<unknown>;
      const answer = await this.call(`reading the Object Lock configuration of bucket "${this.bucket}"`, () => read(this.bucket));
      return saysObjectLockEnabled(answer) ? { enabled: true } : { enabled: false, answer: 'a configuration without ObjectLockEnabled: Enabled' };
    } catch (err) {
      if (err instanceof S3Failure && (err.kind === 'other' || err.kind === 'not-found') && !err.retryable) return { enabled: false, answer: err.code };
      throw err;
    }
  }

  /**
   * Opens an archive for download: the object's stream, its size, the checksum
   * from its metadata and the one from its sidecar. The caller compares them
   * with what it reads (see @chango/restore).
   */
  async open(key: string): Promise<OpenedArchive> {
    if (!parseBackupKey(this.destination.prefix, key)) {
      throw new S3Failure('other', `${key} is not a chango backup key under prefix '${this.destination.prefix}' (expected ${this.destination.prefix}chango-<YYYYMMDDTHHMMSSZ>-<uuid>.tar.gz)`, false, 'NotABackupKey');
    }
    const stat = await this.call(`looking up ${key}`, () => this.client.statObject(this.bucket, key));
    const sidecarSha256 = (await this.readSidecar(key)) ?? null;
    const stream = await this.download(key, stat.size);
    return { key, stream, size: stat.size, metadataSha256: stat.metaData[META_SHA256] ?? null, sidecarSha256 };
  }

  /**
   * The object's bytes as a stream of our own: minio's response piped through,
   * its errors turned into S3Failures (a socket destroyed by the idle bound
   * shows up on the response as a bare "aborted"), destroyed at the deadline.
   */
  private async download(key: string, size: number): Promise<Readable> {
    const operation = `downloading ${key}`;
    const scope = this.begin(operation, this.transferDeadline(size), { holdProcess: false });
    let response: Readable;
    try {
      response = await this.within(scope, () => this.client.getObject(this.bucket, key));
    } catch (err) {
      scope.finish();
      throw this.abortReasons.has(err as object) ? err : this.failure(err, operation);
    }
    const out = new PassThrough();
    const fail = (err: unknown) => {
      if (out.destroyed) return;
      const cause = scope.call.ended ?? scope.call.boundHit ?? err;
      out.destroy(this.abortReasons.has(cause as object) ? (cause as Error) : this.failure(cause, operation));
    };
    scope.call.onEnd(fail);
    response.on('error', fail);
    out.once('close', () => {
      scope.finish();
      if (!response.readableEnded) response.destroy();
    });
    response.pipe(out);
    return out;
  }

  /** Writes the outcome of a restore drill beside the archive (under the destination's Object Lock, if any). */
  async recordVerification(record: VerificationRecord): Promise<void> {
    await this.putSmall(verifyRecordKey(record.key), `${JSON.stringify(record, null, 2)}\n`, 'application/json', `writing ${verifyRecordKey(record.key)}`);
  }

  /** Aborts incomplete multipart uploads of our archives under the prefix (left by a crashed worker). Returns their keys. */
  async abortIncompleteUploads(): Promise<string[]> {
    const keys = await this.call('listing incomplete uploads', async () => {
      const found: string[] = [];
      for await (const upload of this.client.listIncompleteUploads(this.bucket, this.destination.prefix, true)) {
        if (parseBackupKey(this.destination.prefix, upload.key)) found.push(upload.key);
      }
      return found;
    });
    for (const key of keys) {
      await this.call(`aborting the multipart upload of ${key}`, () => this.client.removeIncompleteUpload(this.bucket, key)).catch((err: unknown) => {
        if (this.abortReasons.has(err as object)) throw err;
      });
    }
    return keys;
  }

  /**
   * One page of the archives under the prefix, newest first: at most `limit`,
   * all older than `before` when given (the `next` of the page before). Costs
   * a seek (a request or two of at most 1,000 keys, whatever the number of
   * backups) and a GET of each sidecar and drill record on the page that was
   * not read before with the same ETag. `complete` means a sidecar that holds
   * a checksum.
   */
  async page(options: { limit: number; before?: string | undefined }): Promise<BackupPage> {
    const limit = Math.max(1, options.limit);
    const found = await this.seekNewest({ need: limit, before: options.before });
    const shown = found.archives.slice(0, limit);
    const objects = await this.describe(shown);
    const more = found.archives.length > limit || !found.reachedOldest;
    return { objects, next: more && shown.length > 0 ? (shown.at(-1)?.key ?? null) : null };
  }

  /** The newest backup with a sidecar that holds a checksum (what `--latest` and a drill without a key mean), or undefined. */
  async newestComplete(): Promise<BackupObject | undefined> {
    let before: string | undefined;
    // Usually the first archive with a sidecar is it; a sidecar that does not hold a checksum sends the search further back.
    for (;;) {
      const found = await this.seekNewest({ need: 1, before, counts: (archive) => archive.sidecar !== null });
      for (const archive of found.archives) {
        if (!archive.sidecar) continue;
        const [object] = await this.describe([archive]);
        if (object?.complete) return object;
      }
      if (found.reachedOldest || found.archives.length === 0) return undefined;
      before = found.archives.at(-1)?.key;
    }
  }

  /**
   * The newest archives before a cursor, newest first (see archive-listing.ts):
   * at least `need` of those that `counts` when that many exist. Only names,
   * sizes, times and ETags: nothing is read.
   */
  async seekNewest(request: Omit<SeekRequest, 'prefix' | 'hint'>): Promise<SeekResult> {
    const known = seekHints.get(this.destinationId);
    const result = await seekNewest(this.listRequest, { ...request, prefix: this.destination.prefix, hint: known });
    // Whether the newest window holds every archive is learned from the newest page only: a cursor's last page always does.
    seekHints.set(this.destinationId, {
      spacing: result.hint.spacing ?? known?.spacing,
      fromFirst: request.before === undefined ? result.hint.fromFirst : known?.fromFirst,
      newest: request.before === undefined ? (result.hint.newest ?? known?.newest) : known?.newest,
    });
    return result;
  }

  /** One request of an ascending walk over the archives, from `startAfter` (firstArchiveBound for the oldest). */
  async walk(startAfter: string, maxKeys?: number): Promise<WalkPage> {
    return walkPage(this.listRequest, this.destination.prefix, startAfter, maxKeys);
  }

  /**
   * What a listing says of archives: the checksum from each sidecar and the
   * verdict of each drill record, read once per ETag (see rememberedSidecars)
   * and at most DESCRIBE_CONCURRENCY at a time.
   */
  async describe(archives: readonly ListedArchive[]): Promise<BackupObject[]> {
    return mapLimited(archives, DESCRIBE_CONCURRENCY, async (archive) => {
      const sha256 = archive.sidecar ? await this.sidecarFact(archive.key, archive.sidecar.etag) : null;
      const verify = archive.verifyRecord ? await this.verificationFact(archive.key, archive.verifyRecord.etag) : null;
      return {
        key: archive.key,
        size: archive.size,
        lastModified: archive.lastModified.toISOString(),
        sha256,
        complete: sha256 !== null,
        verify: verify ? { ok: verify.ok, kind: verify.kind ?? 'restore', verifiedAt: verify.verifiedAt } : null,
      };
    });
  }

  /** The checksum in a sidecar the listing showed with this ETag: remembered, or read. Null when it holds none. */
  private sidecarFact(key: string, etag: string): Promise<string | null> {
    return this.rememberedRead(rememberedSidecars, sidecarKey(key), etag, () => this.readSidecar(key));
  }

  /** The drill record the listing showed with this ETag: remembered, or read. Null when it is not one. */
  private verificationFact(key: string, etag: string): Promise<VerificationRecord | null> {
    return this.rememberedRead(rememberedRecords, verifyRecordKey(key), etag, () => this.readVerification(key));
  }

  /** What `read` gives for an object at this ETag, read once and then remembered; null for nothing usable or an object already gone. */
  private async rememberedRead<T>(memory: BoundedLru<T | null>, objectKey: string, etag: string, read: () => Promise<T | undefined>): Promise<T | null> {
    const place = `${this.destinationId}\u0000${objectKey}\u0000${etag}`;
    const known = memory.get(place);
    if (known !== undefined) return known;
    // Undefined too when deleted between the listing and the read (retention, by hand): as if the listing had not shown it.
    const value = (await read()) ?? null;
    memory.set(place, value);
    return value;
  }


  /** One ListObjectsV2 request under the prefix (not into subfolders), bounded like every call. */
  private readonly listRequest: ListRequest = async ({ startAfter, continuation, maxKeys }) => {
    const page = await this.call('listing backups', () => this.client.listObjectsV2Query(this.bucket, this.destination.prefix, continuation, '/', maxKeys, startAfter));
    const objects: ListedObject[] = [];
    for (const item of page.objects) {
      if (item.name) objects.push({ name: item.name, size: item.size, etag: item.etag, lastModified: item.lastModified });
    }
    return { objects, truncated: page.isTruncated, continuation: page.nextContinuationToken ?? '' };
  };

  /** The checksum in `<key>.sha256`; undefined when there is no sidecar, or it does not hold one. */
  async readSidecar(key: string): Promise<string | undefined> {
    const body = await this.readSmallObject(sidecarKey(key));
    return body === undefined ? undefined : parseSidecar(body);
  }

  /** The drill record `<key>.verify.json`; undefined when there is none, or it is not one (written by hand, damaged). */
  async readVerification(key: string): Promise<VerificationRecord | undefined> {
    const body = await this.readSmallObject(verifyRecordKey(key));
    if (body === undefined) return undefined;
    try {
      const record = JSON.parse(body) as VerificationRecord;
      return typeof record.ok === 'boolean' && typeof record.verifiedAt === 'string' ? record : undefined;
    } catch {
      return undefined;
    }
  }

  /** A sidecar's or drill record's text; undefined when the object does not exist (never written, or deleted meanwhile). */
  private async readSmallObject(key: string): Promise<string | undefined> {
    const read = this.call(`reading ${key}`, async () => {
      const stream = await this.client.getObject(this.bucket, key);
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of stream) {
        bytes += (chunk as Buffer).length;
        // Sidecars and drill records are a few hundred bytes; anything big is not one of ours.
        if (bytes > 64 * 1024) {
          stream.destroy();
          break;
        }
        chunks.push(chunk as Buffer);
      }
      return Buffer.concat(chunks).toString('utf8');
    });
    return read.catch((err: unknown) => {
      if (err instanceof S3Failure && err.kind === 'not-found') return undefined;
      throw err;
    });
  }

  /** One bounded call (deadline: the call timeout unless given); failures in words, abortInFlight's reason as it is. */
  private async call<T>(operation: string, work: () => Promise<T>, options: CallOptions = {}): Promise<T> {
    try {
      return await this.scoped(operation, options.deadline ?? this.callDeadline(), work);
    } catch (err) {
      throw this.abortReasons.has(err as object) ? err : this.failure(err, operation, options);
    }
  }

  /** Runs `work` in a scope of its own, against its deadline; rejects with what ended it (raw, not yet in words). */
  private async scoped<T>(operation: string, deadline: Deadline, work: () => Promise<T>): Promise<T> {
    const scope = this.begin(operation, deadline, { holdProcess: true });
    try {
      return await this.within(scope, work);
    } finally {
      scope.finish();
    }
  }

  /** A scope under way: its deadline armed, abortInFlight can reach it. finish() when its work is over. */
  private begin(operation: string, deadline: Deadline, { holdProcess }: { holdProcess: boolean }): { call: CallScope; finish: () => void } {
    const call = new CallScope(operation);
    const timer = setTimeout(() => call.end(deadline.error()), deadline.ms);
    // A pending call keeps the process alive until its deadline (minio can leave a promise pending forever);
    // a download stream is held by its socket, and one its reader abandoned must not keep the process.
    if (!holdProcess) timer.unref();
    this.inFlight.add(call);
    return {
      call,
      finish: () => {
        clearTimeout(timer);
        this.inFlight.delete(call);
      },
    };
  }

  /**
   * Runs `work` with its requests in `scope`, until it settles or the scope
   * ends. On failure the scope is ended too (nothing of it keeps running), and
   * the error is the one that tells why: the scope's end (deadline, abort),
   * then a socket bound hit, then what the work threw.
   */
  private async within<T>(scope: { call: CallScope }, work: () => Promise<T>): Promise<T> {
    const { call } = scope;
    let stopListening = () => undefined as unknown;
    const ended = new Promise<never>((_, reject) => {
      stopListening = call.onEnd(reject);
    });
    try {
      return await Promise.race([runInScope(call, work), ended]);
    } catch (err) {
      const cause = call.ended ?? call.boundHit ?? err;
      call.end(cause instanceof Error ? cause : new Error(String(cause)));
      throw cause;
    } finally {
      stopListening();
    }
  }

  private callDeadline(): Deadline {
    const ms = this.timeouts.callMs;
    return { ms, error: () => new S3TimeoutError('call', ms) };
  }

  /** The deadline of a bulk transfer: max(call timeout, size at the minimum rate). */
  private transferDeadline(bytes: number): Deadline {
    const ms = transferDeadlineMs(bytes, this.timeouts);
    if (ms <= this.timeouts.callMs) return this.callDeadline();
    return { ms, error: () => new S3TimeoutError('transfer', ms, { bytes, minBytesPerSec: this.timeouts.minBytesPerSec }) };
  }

  private failure(err: unknown, operation: string, { carriesSse = false }: CallOptions = {}): S3Failure {
    const { sse: mode, sseKmsKeyId } = this.destination;
    // A refused SSE-KMS names the key it asked for: a key the server does not know is the usual cause.
    const sse = carriesSse && mode !== 'none' ? (mode === 'aws:kms' && sseKmsKeyId ? `${mode} with the KMS key ${sseKmsKeyId}` : mode) : undefined;
    const failure = describeS3Error(err, { endpoint: this.destination.endpoint, bucket: this.bucket, accessKey: this.destination.accessKey, operation, ...(sse ? { sse } : {}) });
    if (failure.kind === 'credentials' && carriesSse && mode === 'aws:kms' && sseKmsKeyId) {
      // Ceph RGW answers InvalidAccessKeyId when its KMS does not know the key asked for: say so rather than only blame the credentials.
      return new S3Failure(
        failure.kind,
        `${failure.message} — this request asked for SSE-KMS with the key ${sseKmsKeyId}: some servers (Ceph RGW) give this answer when their KMS does not know the key, so check sseKmsKeyId too`,
        failure.retryable,
        failure.code,
        { cause: failure },
      );
    }
    return failure;
  }
}

/** The entries of a DeleteObjects answer that refused something (a version already gone is not a refusal). */
function refusalsOf(errors: readonly unknown[]): Refusal[] {
  return errors.flatMap((entry): Refusal[] => {
    if (!entry || typeof entry !== 'object') return [];
    const { Key, VersionId, Code, Message } = entry as { Key?: string; VersionId?: string; Code?: string; Message?: string };
    if (!Code || ALREADY_GONE.has(Code)) return [];
    return [{ key: Key ?? '', ...(VersionId ? { versionId: VersionId } : {}), code: Code, message: Message ?? '' }];
  });
}
