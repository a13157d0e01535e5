/**
 * The buffers the archive reads checkpoint files into, reused once the gzip
 * has copied their bytes in, rather than one new Buffer per read.
 *
 * Why: a fresh 256 KiB Buffer per read is a GiB of short-lived Buffers per
 * GiB of state. V8 frees their memory only at a garbage collection, so they
 * pile up between collections (the worker's resident memory) and call for
 * more of them (its CPU): measured at 256 MiB of state, the worker's peak went
 * from 150 to 145 MiB and the forced collections of a backup from 10 to 4.
 *
 * A buffer is lent out with the bytes read into it, and comes back once the
 * gzip has absorbed as many bytes of it as were lent (ParallelGzip's
 * `onAbsorbed`): the chunks between — archiver's tar, tar-stream — are the
 * same memory, possibly cut into slices, so the count is per buffer, not per
 * chunk. A buffer whose bytes were copied elsewhere on the way never comes
 * back and is left to the garbage collector: never reused too early.
 */
export class ReadBufferPool {
  private readonly free: Buffer[] = [];
  /** Buffers lent out, by their memory, with how many of their bytes the gzip has yet to absorb. */
  private readonly lent = new Map<ArrayBufferLike, { buffer: Buffer; outstanding: number }>();

  constructor(readonly bufferBytes: number) {}

  /** A buffer to read into: a free one, or a new one. */
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
  }

  /** Its first `bytes` bytes go into the archive; it is reused once they have all been absorbed. */
  lend(buffer: Buffer, bytes: number): Buffer {
    if (bytes === 0) {
      this.free.push(buffer);
      return buffer.subarray(0, 0);
    }
    this.lent.set(buffer.buffer, { buffer, outstanding: bytes });
    return buffer.subarray(0, bytes);
  }

  /** A chunk the gzip has copied in (ParallelGzip's `onAbsorbed`); chunks of memory not lent here are ignored. */
  absorbed(chunk: Buffer): void {
    const loan = this.lent.get(chunk.buffer);
    if (!loan) return;
    loan.outstanding -= chunk.length;
    if (loan.outstanding > 0) return;
    this.lent.delete(chunk.buffer);
    this.free.push(loan.buffer);
  }

  /** Buffers out or free, for tests: bounded by what is in flight at once, whatever the archive's size. */
  get size(): number {
    return this.free.length + this.lent.size;
  }
}
