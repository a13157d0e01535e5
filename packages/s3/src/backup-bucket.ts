import type { Readable } from 'node:stream';
import type { Client } from 'minio';
import {
  parseBackupKey,
  parseSidecar,
  sidecarBody,
  sidecarKey,
  SIDECAR_SUFFIX,
  type BackupDestination,
  type BackupObject,
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
    await this.client.removeObjects(this.bucket, [key, sidecarKey(key)]).catch(() => undefined);
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
    const archives = entries.filter((e) => parseBackupKey(this.destination.prefix, e.name)).sort((a, b) => (a.name < b.name ? 1 : -1));
    const result: BackupObject[] = [];
    for (const entry of archives) {
      const sha256 = names.has(entry.name + SIDECAR_SUFFIX) ? await this.readSidecar(entry.name) : undefined;
      result.push({ key: entry.name, size: entry.size, lastModified: entry.lastModified.toISOString(), sha256: sha256 ?? null, complete: sha256 !== undefined });
    }
    return result;
  }

  private async readSidecar(key: string): Promise<string | undefined> {
    return this.call(`reading ${sidecarKey(key)}`, false, async () => {
      const stream = await this.client.getObject(this.bucket, sidecarKey(key));
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      return parseSidecar(Buffer.concat(chunks).toString('utf8'));
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
