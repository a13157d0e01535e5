import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Passes bytes through unchanged while computing their SHA-256 and counting them.
 *
 * Sits between the archive stream and the upload: the archive's checksum cannot
 * live inside the archive, so it is computed on the bytes as they leave
 * (hashing runs at ~1.5 GB/s, far above gzip, so it costs nothing) and goes into
 * the run result, the object metadata and the `.sha256` sidecar.
 */
export class HashingCounter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private digest: string | null = null;
  private count = 0;

  /** Bytes passed through so far (final once the stream has ended). */
  get bytes(): number {
    return this.count;
  }

  /** Hex SHA-256 of every byte passed through; throws before the input has ended, when it would be partial. */
  sha256(): string {
    if (this.digest === null) throw new Error('HashingCounter.sha256() called before the stream ended');
    return this.digest;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.count += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.digest = this.hash.digest('hex');
    callback();
  }
}
