import { createHash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import { extract as tarExtract, type Extract, type Header } from 'tar-stream';
import { AGE_MAGIC, AgeDecryptError, decryptingStream, looksAgeEncrypted } from '@chango/security';
import { RestoreError } from './errors.js';

/** The SHA-256 and length of the compressed archive, as it came from the source. */
export interface ArchiveDigest {
  sha256: string;
  bytes: number;
}

/** One tar entry: its header and its content, to be read to the end before the next entry comes. */
export interface ArchiveEntry extends AsyncIterable<Buffer> {
  header: Header;
}

/**
 * gunzip's output buffer: 64 KiB rather than zlib's 16 KiB, so a GiB archive
 * is written to disk in fewer, larger writes. Memory stays a few of these.
 */
const GUNZIP_CHUNK_BYTES = 64 * 1024;

export interface ArchiveReaderOptions {
  /** Read the whole source after a failure, hashing only (see below). */
  hashWholeSource: boolean;
  /** age identities (AGE-SECRET-KEY-1…) that open an archive encrypted to offline recipients. */
  identities?: readonly string[] | undefined;
}

/**
 * Reads a `.tar.gz` stream: hashes the compressed bytes as they arrive, gunzips
 * them (node:zlib reads a series of gzip members as one stream, which is what
 * the archive writer produces) and parses the tar with tar-stream, handing out
 * entries one at a time.
 *
 * An archive encrypted to offline recipients (`.tar.gz.age`) is told by its
 * first bytes (the age header), not by its name: it is decrypted on the way
 * to gunzip with the identities given — none given is ARCHIVE_ENCRYPTED, none
 * that opens it IDENTITY_MISMATCH, a chunk that does not authenticate
 * ARCHIVE_CORRUPT. The digest is always of the stored (encrypted) bytes: what
 * the sidecar holds.
 *
 * Backpressure runs end to end: the next source chunk is read only once gunzip
 * took the previous one, gunzip is paused while tar-stream waits for the
 * current entry to be read, and an entry is read as fast as it is written to
 * disk. Memory stays flat whatever the archive size.
 *
 * Failures are classified where they happen — the source's own error passes
 * through unchanged (it is the caller's: a download that broke), a gzip or tar
 * error becomes ARCHIVE_CORRUPT — and the first one is kept in `failure`, so the
 * consequences that follow (tar-stream seeing its input cut, say) never mask
 * the cause.
 *
 * After a failure, decoding stops. With `hashWholeSource` the source is still
 * read to its end, only hashed: a restore given an expected checksum can then
 * say whether the bytes were the archive it was told to expect, which is the
 * more useful diagnosis for a damaged download than the gzip error it caused.
 */
export class ArchiveReader {
  /** The tar entries, in archive order (one iterator, created before any entry can be emitted). */
  readonly entries: AsyncIterator<ArchiveEntry>;
  /**
   * Resolves once the source has been read to its end, with its digest; or
   * with null when reading stopped early (a failure without hashWholeSource, the
   * source's own error, close()). Never rejects.
   */
  readonly digest: Promise<ArchiveDigest | null>;

  private readonly hash = createHash('sha256');
  private bytes = 0;
  private readonly gunzip: Gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
  private readonly extract: Extract = tarExtract();
  /** Where source bytes go: gunzip, or the decryptor in front of it; chosen by the first bytes. */
  private input: Writable | undefined;
  /** The first bytes, held until there are enough to tell an encrypted archive from a plain one. */
  private head: Buffer[] = [];
  private headBytes = 0;
  private firstFailure: Error | null = null;
  /** Whether source bytes still go to gunzip (false after a failure, the end of the tar, or close()). */
  private decoding = true;
  private closed = false;
  private tarFinished = false;

  constructor(
    private readonly source: Readable,
    private readonly options: ArchiveReaderOptions,
  ) {
    this.gunzip.on('error', (err: Error) => this.fail(corrupt('gzip', err, this.bytes)));
    // Our own RestoreErrors reach this listener when we destroy the extractor with them (see fail()).
    this.extract.on('error', (err: Error) => this.fail(err instanceof RestoreError ? err : corrupt('tar', err, this.bytes)));
    this.extract.on('finish', () => (this.tarFinished = true));
    // If the extractor is closed from the entry side (an iterator given up), stop feeding it: a
    // destroyed tar-stream never drains, and the source loop would wait for gunzip forever.
    this.extract.on('close', () => {
      if (!this.tarFinished) this.stopDecoding();
    });
    this.entries = (this.extract as unknown as AsyncIterable<ArchiveEntry>)[Symbol.asyncIterator]();
    (this.gunzip as unknown as { pipe(dest: unknown): void }).pipe(this.extract);
    this.digest = this.pump();
  }

  /** The first failure, classified (null while all is well). */
  get failure(): Error | null {
    return this.firstFailure;
  }

  /** Records `err` as the failure if it is the first one, and stops decoding. */
  fail(err: Error): void {
    if (this.firstFailure === null) this.firstFailure = err;
    this.stopDecoding(this.firstFailure);
  }

  /** Stops everything, the source included: for a reader that got what it wanted (the manifest). */
  close(): void {
    this.closed = true;
    this.stopDecoding();
    this.source.destroy();
  }

  private stopDecoding(err?: Error): void {
    if (!this.decoding) return;
    this.decoding = false;
    this.gunzip.unpipe(this.extract);
    this.gunzip.destroy();
    if (this.input !== this.gunzip) this.input?.destroy();
    // With an error, the entries iterator rejects with it; without, it ends.
    this.extract.destroy(err);
  }

  /** Reads the source, hashing every byte and feeding gunzip while decoding goes on. */
  private async pump(): Promise<ArchiveDigest | null> {
    try {
      for await (const piece of this.source as AsyncIterable<Buffer | string>) {
        const chunk = typeof piece === 'string' ? Buffer.from(piece) : piece;
        this.hash.update(chunk);
        this.bytes += chunk.length;
        if (this.decoding) await this.feed(chunk);
        // Leaving the loop destroys the source: nobody needs the rest.
        else if (this.closed || !this.options.hashWholeSource) return null;
      }
    } catch (err) {
      // The source broke (a download cut off, a file unreadable): its error, unchanged, is the cause.
      if (!this.closed) this.fail(err instanceof Error ? err : new Error(String(err)));
      return null;
    }
    if (this.closed) return null;
    if (this.decoding && !this.input) this.choose();
    if (this.decoding) this.input?.end();
    return { sha256: this.hash.digest('hex'), bytes: this.bytes };
  }

  /** Writes a chunk on its way to gunzip; resolves when it can take more, or when decoding stopped meanwhile. */
  private feed(chunk: Buffer): Promise<void> {
    if (!this.input) {
      this.head.push(chunk);
      this.headBytes += chunk.length;
      if (this.headBytes < AGE_MAGIC.length) return Promise.resolve();
      chunk = this.choose();
    }
    const input = this.input;
    if (!input || !this.decoding || input.write(chunk)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        input.off('drain', done);
        input.off('close', done);
        resolve();
      };
      input.on('drain', done);
      input.on('close', done);
    });
  }

  /** Picks the input by the first bytes (an age header or not) and returns them, to be written first. */
  private choose(): Buffer {
    const head = Buffer.concat(this.head);
    this.head = [];
    if (!looksAgeEncrypted(head)) {
      this.input = this.gunzip;
      return head;
    }
    const identities = this.options.identities ?? [];
    if (identities.length === 0) {
      this.fail(
        new RestoreError(
          'ARCHIVE_ENCRYPTED',
          'the archive is encrypted to offline age recipients (.tar.gz.age) and no identity was given to open it: ' +
            'pass the identity file with --identity FILE (or name it in CHANGO_AGE_IDENTITY_FILE); the key itself never goes on the command line',
        ),
      );
      return head;
    }
    const decryptor = decryptingStream(identities);
    decryptor.on('error', (err: Error) => this.fail(decryptFailure(err, identities.length)));
    // pipe() ends gunzip only when the decryptor ends whole; an error stops decoding through fail().
    decryptor.pipe(this.gunzip);
    this.input = decryptor;
    return head;
  }
}

/** The decryptor's failure as a RestoreError an operator can act on. */
function decryptFailure(err: Error, identities: number): RestoreError {
  if (err instanceof AgeDecryptError && err.failure === 'no-matching-identity') {
    return new RestoreError(
      'IDENTITY_MISMATCH',
      `the archive is encrypted to offline age recipients, and none of the ${identities} identit${identities === 1 ? 'y' : 'ies'} given opens it: ` +
        'use the identity file whose public key (age-keygen -y FILE) is one of the destination\'s encryption recipients',
      { cause: err },
    );
  }
  return new RestoreError(
    'ARCHIVE_CORRUPT',
    `the archive cannot be read: ${err.message}. The object is truncated, damaged or was altered after the backup: download it again and check it with \`sha256sum -c\` against its .sha256 sidecar.`,
    { cause: err },
  );
}

/** ARCHIVE_CORRUPT for an error of the gzip or tar layer, with where in the download it happened. */
function corrupt(layer: 'gzip' | 'tar', err: Error, bytesRead: number): RestoreError {
  const what =
    layer === 'gzip'
      ? `its gzip data cannot be decompressed (${err.message})`
      : `the tar inside the gzip is damaged (${err.message})`;
  return new RestoreError(
    'ARCHIVE_CORRUPT',
    `the archive cannot be read: ${what}, within the first ${bytesRead} bytes of the download. ` +
      'The file is truncated, damaged, or not a chango-backup .tar.gz: download it again and check it with `sha256sum -c` against its .sha256 sidecar.',
    { cause: err },
  );
}
