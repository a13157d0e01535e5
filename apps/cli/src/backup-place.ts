import type { Readable } from 'node:stream';
import { parseBackupKey, sidecarKey, type BackupObject } from '@chango/contracts';
import { DirectoryArchives } from '@chango/directory-archives';
import { expectedChecksum, type BackupBucket } from '@chango/s3';
import { bucketFromFlags, CliError, type S3Flags } from './s3-options.js';

/** The flags that say where backups are read from: S3 (flags and CHANGO_S3_*), or a directory copy target (`--dir`). */
export interface PlaceFlags extends S3Flags {
  dir?: string;
}

/** A backup opened for reading, with the checksum it must have, or why it cannot be trusted. */
export interface OpenedBackup {
  origin: string;
  stream: Readable;
  /** The sidecar's checksum; null when there is no sidecar (never committed). */
  sidecarSha256: string | null;
  /** What the checksums say before a byte is read: the one to expect, or why not. */
  expected: { sha256: string } | { problem: string };
}

/** Where `list`, `inspect`, `restore` and `verify` read backups: one S3 destination, or one directory. */
export interface BackupPlace {
  /** For messages: `s3://bucket/prefix` or the directory. */
  readonly where: string;
  /** The fields that open the JSON listing: {bucket, prefix} or {dir}. */
  readonly listingHeader: Record<string, string>;
  page(options: { limit: number; before?: string | undefined }): Promise<{ objects: BackupObject[]; next: string | null }>;
  newestComplete(): Promise<BackupObject | undefined>;
  isEncrypted(key: string): boolean;
  open(key: string): Promise<OpenedBackup>;
}

/** `--dir` reads a directory copy target and needs no S3 setting; otherwise the S3 flags and variables apply. */
export function placeFromFlags(flags: PlaceFlags): BackupPlace {
  return flags.dir !== undefined ? new DirectoryPlace(flags.dir) : new BucketPlace(bucketFromFlags(flags));
}

class BucketPlace implements BackupPlace {
  readonly where: string;
  readonly listingHeader: Record<string, string>;

  constructor(private readonly bucket: BackupBucket) {
    this.where = `s3://${bucket.bucket}/${bucket.destination.prefix}`;
    this.listingHeader = { bucket: bucket.bucket, prefix: bucket.destination.prefix };
  }

  page(options: { limit: number; before?: string | undefined }) {
    return this.bucket.page(options);
  }

  newestComplete() {
    return this.bucket.newestComplete();
  }

  isEncrypted(key: string): boolean {
    return parseBackupKey(this.bucket.destination.prefix, key)?.encrypted ?? false;
  }

  async open(key: string): Promise<OpenedBackup> {
    const archive = await this.bucket.open(key);
    return { origin: `s3://${this.bucket.bucket}/${archive.key}`, stream: archive.stream, sidecarSha256: archive.sidecarSha256, expected: expectedChecksum(archive) };
  }
}

class DirectoryPlace implements BackupPlace {
  readonly where: string;
  readonly listingHeader: Record<string, string>;
  private readonly archives: DirectoryArchives;

  constructor(dir: string) {
    if (!dir.startsWith('/')) throw new CliError(`--dir ${dir} must be an absolute path (the copy target's path, e.g. /mnt/offline/chango)`);
    this.archives = new DirectoryArchives(dir.replace(/\/+$/, '') || '/');
    this.where = this.archives.root;
    this.listingHeader = { dir: this.archives.root };
  }

  page(options: { limit: number; before?: string | undefined }) {
    return this.archives.page(options);
  }

  newestComplete() {
    return this.archives.newestComplete();
  }

  isEncrypted(key: string): boolean {
    return parseBackupKey('', key)?.encrypted ?? false;
  }

  async open(key: string): Promise<OpenedBackup> {
    if (!parseBackupKey('', key)) throw new CliError(`--key ${key}: in a directory a backup is named by its file name (chango-<YYYYMMDDTHHMMSSZ>-<uuid>.tar.gz), as \`list --dir\` shows it`);
    const archive = await this.archives.open(key).catch((err: Error) => Promise.reject(new CliError(err.message)));
    const expected = archive.sidecarSha256
      ? { sha256: archive.sidecarSha256 }
      : { problem: `${archive.path} has no sidecar (${sidecarKey(archive.path)}): the copy never committed, so it is not a backup` };
    return { origin: archive.path, stream: archive.stream, sidecarSha256: archive.sidecarSha256, expected };
  }
}
