import type { Readable } from 'node:stream';
import type { Client } from 'minio';
import {
  parseBackupKey,
  parseSidecar,
  sidecarBody,
  sidecarKey,
  verifyRecordKey,
  SIDECAR_SUFFIX,
  VERIFY_SUFFIX,
  type BackupDestination,
  type BackupObject,
  type VerificationRecord,
} from '@chango/contracts';
import { createS3Client, sseHeaders } from './client.js';
import { describeS3Error, S3Failure } from './errors.js';

/** User metadata on every archive (minio sends them as x-amz-meta-…; statObject gives them back without the prefix). */
export const META_SHA256 = 'chango-sha256';
export const META_BACKUP_ID = 'chango-backup-id';

export interface ArchiveFacts {
  size: number;
  sha256: string;
  backupId: string;
}

/** An archive opened for reading, with what the destination says about it. */
export interface OpenedArchive {
  key: string;
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
 */
export class BackupBucket {
  readonly client: Client;

  constructor(
    readonly destination: BackupDestination,
    partBytes?: number,
  ) {
    this.client = createS3Client(destination, partBytes);
  }

  get bucket(): string {
    return this.destination.bucket;
  }

  /**
   * Uploads an archive whose size and checksum are known (it was spooled to
   * disk first), with the checksum in its user metadata and the SSE header —
   * both sent when the upload starts, which is why the checksum must be known
   * before: a later server-side copy to add it is not something every S3 does
   * (Ceph RGW answers NotImplemented for encrypted objects).
   *
   * minio-js's putObject never settles when its source stream fails (minio-js
   * #1479), so it is raced against the source's error; on any failure the
   * incomplete upload and any partial object are removed.
   */
  async upload(key: string, source: Readable, facts: ArchiveFacts): Promise<void> {
    let sourceError: unknown;
    const sourceFailed = new Promise<never>((_, reject) =>
      source.once('error', (err) => {
        sourceError = err;
        reject(err);
      }),
    );
    sourceFailed.catch(() => undefined);
    const metadata = {
      'Content-Type': 'application/gzip',
      [META_SHA256]: facts.sha256,
      [META_BACKUP_ID]: facts.backupId,
      ...sseHeaders(this.destination.sse),
    };
    try {
      await Promise.race([this.client.putObject(this.bucket, key, source, facts.size, metadata), sourceFailed]);
    } catch (err) {
      source.destroy();
      await this.discard(key);
      // A failing local read is not an S3 problem: let it through as it is.
      throw sourceError !== undefined ? sourceError : this.failure(err, `uploading ${key}`, true);
    }
  }

  /**
   * Makes an uploaded archive a backup: reads it back (size and stored
   * checksum must be what was sent), then writes the sidecar `<key>.sha256` —
   * last, as the commit marker.
   */
  async commit(key: string, expected: ArchiveFacts): Promise<void> {
    const stored = await this.call(`reading back ${key}`, false, () => this.client.statObject(this.bucket, key));
    if (stored.size !== expected.size || stored.metaData[META_SHA256] !== expected.sha256) {
      throw new S3Failure(
        'other',
        `reading ${key} back gave ${stored.size} bytes and checksum ${stored.metaData[META_SHA256] ?? 'none'}, ` +
          `but ${expected.size} bytes with checksum ${expected.sha256} were sent: the upload is not whole`,
        true,
        'ReadBackMismatch',
      );
    }
    const body = sidecarBody(key, expected.sha256);
    await this.call(`writing the sidecar ${sidecarKey(key)}`, true, () =>
      this.client.putObject(this.bucket, sidecarKey(key), Buffer.from(body), Buffer.byteLength(body), {
        'Content-Type': 'text/plain',
        ...sseHeaders(this.destination.sse),
      }),
    );
  }

  /** Removes an archive, its sidecar and any incomplete multipart upload of it. Missing pieces are fine. */
  async discard(key: string): Promise<void> {
    await this.client.removeIncompleteUpload(this.bucket, key).catch(() => undefined);
    await this.client.removeObjects(this.bucket, [key, sidecarKey(key), verifyRecordKey(key)]).catch(() => undefined);
  }

  /**
   * Deletes backups for retention: each archive with its sidecar and drill
   * record. Only keys that parse as our archives under the prefix are
   * accepted — anything else is a bug upstream and is refused, not deleted.
   */
  async remove(keys: readonly string[]): Promise<void> {
    const foreign = keys.filter((key) => !parseBackupKey(this.destination.prefix, key));
    if (foreign.length > 0) throw new Error(`refusing to delete objects that are not chango backups under '${this.destination.prefix}': ${foreign.join(', ')}`);
    const objects = keys.flatMap((key) => [key, sidecarKey(key), verifyRecordKey(key)]);
    const errors = await this.call(`deleting ${keys.length} old backup(s)`, false, () => this.client.removeObjects(this.bucket, objects));
    const failed = errors.filter((e) => e && typeof e === 'object' && 'Code' in e && (e as { Code?: string }).Code !== 'NoSuchKey');
    if (failed.length > 0) throw new S3Failure('other', `deleting old backups from bucket ${this.bucket}: the endpoint refused ${failed.length} deletion(s): ${JSON.stringify(failed).slice(0, 300)}`, true, 'DeleteFailed');
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
    const stat = await this.call(`looking up ${key}`, false, () => this.client.statObject(this.bucket, key));
    const sidecarSha256 = (await this.readSidecar(key).catch((err: unknown) => {
      if (err instanceof S3Failure && err.kind === 'not-found') return undefined;
      throw err;
    })) ?? null;
    const stream = await this.call(`downloading ${key}`, false, () => this.client.getObject(this.bucket, key));
    return { key, stream, size: stat.size, metadataSha256: stat.metaData[META_SHA256] ?? null, sidecarSha256 };
  }

  /** Writes the outcome of a restore drill beside the archive. */
  async recordVerification(record: VerificationRecord): Promise<void> {
    const body = `${JSON.stringify(record, null, 2)}\n`;
    await this.call(`writing ${verifyRecordKey(record.key)}`, true, () =>
      this.client.putObject(this.bucket, verifyRecordKey(record.key), Buffer.from(body), Buffer.byteLength(body), {
        'Content-Type': 'application/json',
        ...sseHeaders(this.destination.sse),
      }),
    );
  }

  /** Aborts incomplete multipart uploads of our archives under the prefix (left by a crashed worker). Returns their keys. */
  async abortIncompleteUploads(): Promise<string[]> {
    const keys = await this.call('listing incomplete uploads', false, async () => {
      const found: string[] = [];
      for await (const upload of this.client.listIncompleteUploads(this.bucket, this.destination.prefix, true)) {
        if (parseBackupKey(this.destination.prefix, upload.key)) found.push(upload.key);
      }
      return found;
    });
    for (const key of keys) await this.client.removeIncompleteUpload(this.bucket, key).catch(() => undefined);
    return keys;
  }

  /** Our archives under the prefix, newest first; `complete` only with a sidecar that holds a checksum. */
  async list(): Promise<BackupObject[]> {
    const entries = await this.call('listing backups', false, async () => {
      const found: { name: string; size: number; lastModified: Date }[] = [];
      for await (const item of this.client.listObjectsV2(this.bucket, this.destination.prefix, false)) {
        if (item.name) found.push({ name: item.name, size: item.size, lastModified: item.lastModified });
      }
      return found;
    });
    const names = new Set(entries.map((e) => e.name));
    // Newest first: by the key's timestamp (second resolution), then by the upload's time, which tells apart two backups of one second.
    const archives = entries
      .map((entry) => ({ ...entry, taken: parseBackupKey(this.destination.prefix, entry.name)?.timestamp.getTime() }))
      .filter((entry): entry is typeof entry & { taken: number } => entry.taken !== undefined)
      .sort((a, b) => b.taken - a.taken || b.lastModified.getTime() - a.lastModified.getTime());
    const result: BackupObject[] = [];
    for (const entry of archives) {
      const sha256 = names.has(entry.name + SIDECAR_SUFFIX) ? await this.readSidecar(entry.name) : undefined;
      const verify = names.has(entry.name + VERIFY_SUFFIX) ? await this.readVerification(entry.name) : undefined;
      result.push({
        key: entry.name,
        size: entry.size,
        lastModified: entry.lastModified.toISOString(),
        sha256: sha256 ?? null,
        complete: sha256 !== undefined,
        verify: verify ? { ok: verify.ok, verifiedAt: verify.verifiedAt } : null,
      });
    }
    return result;
  }

  /** The newest backup with a sidecar (what `--latest` and a drill without a key mean), or undefined. */
  async newestComplete(): Promise<BackupObject | undefined> {
    return (await this.list()).find((object) => object.complete);
  }

  /** The checksum in `<key>.sha256`; undefined when the sidecar does not hold one. */
  async readSidecar(key: string): Promise<string | undefined> {
    return parseSidecar(await this.readSmallObject(sidecarKey(key)));
  }

  /** The drill record `<key>.verify.json`; undefined when it is not one (written by hand, damaged). */
  async readVerification(key: string): Promise<VerificationRecord | undefined> {
    try {
      const record = JSON.parse(await this.readSmallObject(verifyRecordKey(key))) as VerificationRecord;
      return typeof record.ok === 'boolean' && typeof record.verifiedAt === 'string' ? record : undefined;
    } catch (err) {
      if (err instanceof S3Failure) throw err;
      return undefined;
    }
  }

  private async readSmallObject(key: string): Promise<string> {
    return this.call(`reading ${key}`, false, async () => {
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
  }

  private async call<T>(operation: string, carriesSse: boolean, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw this.failure(err, operation, carriesSse);
    }
  }

  private failure(err: unknown, operation: string, carriesSse: boolean): S3Failure {
    const sse = carriesSse && this.destination.sse !== 'none' ? this.destination.sse : undefined;
    return describeS3Error(err, { endpoint: this.destination.endpoint, bucket: this.bucket, accessKey: this.destination.accessKey, operation, ...(sse ? { sse } : {}) });
  }
}
