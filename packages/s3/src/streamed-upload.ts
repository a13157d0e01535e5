import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

/**
 * Streaming an archive of unknown size into a multipart upload, part by part,
 * while it is being made: no spool file, no second read of the archive.
 *
 * Why our own loop rather than minio-js's putObject: for a stream of unknown
 * size minio picks ≈ 528 MiB parts (it buffers whole parts), it lists the
 * bucket's incomplete uploads first, and it sends parts one after another
 * with nothing read in between. Here the next part fills while the previous
 * one is on the wire (at most two parts in memory), and each part's MD5 is
 * kept to compute the multipart ETag the destination should report: the
 * cheap proof that it holds exactly these bytes (see BackupBucket.commit).
 */

/** The destination side of a multipart upload: what the loop needs of S3, and nothing more. */
export interface PartSink {
  /** Sends one part (1-based number) with its Content-MD5; resolves with the ETag the destination gave it. */
  uploadPart(partNumber: number, body: Buffer, md5: Buffer): Promise<string>;
}

/** What was sent: the archive's facts, computed on the bytes as they left. */
export interface StreamedParts {
  size: number;
  /** Hex SHA-256 of all bytes: what the sidecar will say. */
  sha256: string;
  /** Part numbers and the ETags the destination answered, in order: what CompleteMultipartUpload lists. */
  parts: { part: number; etag: string }[];
  /**
   * The multipart ETag an S3 that keeps MD5 ETags computes for these parts:
   * hex MD5 of the parts' binary MD5s, then `-<parts>`.
   */
  expectedEtag: string;
}

export interface StreamPartsOptions {
  /** Bytes per part (all but the last; S3 wants ≥ 5 MiB). */
  partBytes: number;
  /** Parts on the wire at once (default PARTS_IN_FLIGHT); one more fills meanwhile. */
  partsInFlight?: number;
  /** Told after each part the destination acknowledged (bytes acknowledged so far). */
  onPartSent?: (bytesSent: number) => void;
}

/**
 * Parts on the wire at once, by default. Measured on 256 MiB of state against
 * RGW on loopback (bench/README.md, issue 15): 2 in flight took the same time
 * as 1 (6.05 against 5.99 s; the backup is CPU-bound) and raised the worker's
 * peak RSS by about 20 MiB.
 */
export const PARTS_IN_FLIGHT = 1;

/**
 * Reads `source` to its end, cutting it into parts of exactly `partBytes`
 * (the last one shorter), each sent to `sink` with one part in flight while
 * the next one fills. A failing source or a failing part rejects (the other
 * settles first, so nothing is left running); the caller aborts the upload.
 * An empty source still sends one (empty) part: S3 completes no upload without one.
 */
export async function streamParts(source: Readable, sink: PartSink, options: StreamPartsOptions): Promise<StreamedParts> {
  const { partBytes } = options;
  if (!Number.isInteger(partBytes) || partBytes <= 0) throw new RangeError(`partBytes must be a positive whole number, got ${partBytes}`);
  const window = options.partsInFlight ?? PARTS_IN_FLIGHT;
  const whole = createHash('sha256');
  const partMd5s: Buffer[] = [];
  const parts: { part: number; etag: string }[] = [];
  let size = 0;
  let acknowledged = 0;
  /**
   * Part buffers are reused, never dropped: a new Buffer per part would leave
   * tens of MiB of dead ones waiting for a garbage collection (V8 collects
   * external memory lazily), which is what a flat RSS cannot afford. At most
   * window + 1 exist: those on the wire and the one filling.
   */
  const spare: Buffer[] = [];
  const inFlight: Promise<void>[] = [];

  const send = (body: Buffer): Promise<void> => {
    const part = partMd5s.length + 1;
    const md5 = createHash('md5').update(body).digest();
    partMd5s.push(md5);
    return sink.uploadPart(part, body, md5).then((etag) => {
      parts[part - 1] = { part, etag };
      acknowledged += body.length;
      options.onPartSent?.(acknowledged);
    });
  };
  /** Sends the first `length` bytes of `buffer` as the next part; resolves with a buffer to fill next. */
  const next = async (buffer: Buffer, length: number): Promise<Buffer> => {
    // At most `window` parts on the wire: wait for the oldest before sending this one (this one is already read).
    if (inFlight.length >= window) await inFlight.shift();
    const sending = send(buffer.subarray(0, length)).finally(() => spare.push(buffer));
    // Awaited when the window is full or at the end; until then a failure must not count as unhandled.
    sending.catch(() => undefined);
    inFlight.push(sending);
    return spare.pop() ?? Buffer.allocUnsafe(partBytes);
  };

  try {
    let filling: Buffer = Buffer.allocUnsafe(partBytes);
    let filled = 0;
    for await (const chunk of source as AsyncIterable<Buffer>) {
      whole.update(chunk);
      size += chunk.length;
      for (let offset = 0; offset < chunk.length; ) {
        const copied = chunk.copy(filling, filled, offset);
        offset += copied;
        filled += copied;
        if (filled === partBytes) {
          filling = await next(filling, filled);
          filled = 0;
        }
      }
    }
    if (filled > 0 || partMd5s.length === 0) await next(filling, filled);
    await Promise.all(inFlight);
  } catch (err) {
    await Promise.allSettled(inFlight);
    throw err;
  }
  return { size, sha256: whole.digest('hex'), parts, expectedEtag: multipartEtag(partMd5s) };
}

/** The ETag S3 gives a multipart object whose parts have these (binary) MD5s: hex MD5 of their concatenation, `-`, their count. */
export function multipartEtag(partMd5s: readonly Buffer[]): string {
  return `${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${partMd5s.length}`;
}

/** An ETag as S3 sends it, without quotes, in lower case. */
export function plainEtag(etag: string | undefined | null): string {
  return (etag ?? '').replace(/^"|"$/g, '').replace(/&quot;/g, '').toLowerCase();
}
