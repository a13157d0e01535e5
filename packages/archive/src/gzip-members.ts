import { availableParallelism } from 'node:os';
import { Duplex } from 'node:stream';
import { gzip } from 'node:zlib';

/**
 * Parallel gzip as a stream of independent gzip members.
 *
 * Why: gzip is the bottleneck of a backup (≈25–30 MB/s per core on
 * already-compressed SSTs, at level 6 as at level 1; SHA-256 is ~50× faster). A single zlib stream uses
 * one core; node-tar style synchronous compression would also block the event
 * loop and stall BullMQ lock renewal. Here the input is cut into fixed-size
 * chunks and each chunk is compressed on its own with zlib's async `gzip`,
 * which runs on the libuv thread pool, so all cores work and the event loop
 * stays free. RFC 1952 allows a file to be a series of members; GNU gzip, GNU
 * tar and Node's gunzip read the concatenation as one stream (tests check it).
 *
 * Cost: each member restarts the 32 KiB deflate window and adds an 18-byte
 * header+trailer — negligible at MiB-sized chunks (see DEFAULT_CHUNK_BYTES).
 */

/**
 * 1 MiB, measured on the 2-core target (bench/parallel-gzip.bench.ts,
 * 200 MiB of random bytes, parallelism 2, median of 3): 1 MiB → 54 / 57 MB/s
 * (level 6 / level 1), 2 MiB → 55 / 57, 4 MiB → 56 / 58; one zlib stream
 * 27 / 28. Size cost on compressible input against one stream: +0.41 % at
 * 1 MiB, +0.17 % at 2 MiB, +0.06 % at 4 MiB. 4 MiB gains little more but
 * doubles the memory held (up to 3 × parallelism + 2 chunks: 16 MiB at 2 MiB,
 * 32 MiB at 4 MiB) and the longest event-loop pause seen (≈15 → 23 ms).
 * 1 MiB costs 2 % of speed against 2 MiB and saves 8 MiB, which the worker's
 * peak RSS bar (≤ 200 MiB for 1 GiB of state, bench/README.md) needs.
 */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;

/**
 * zlib's memLevel: 9, its largest, not its default 8. Measured on 64 MiB of the
 * seeded state's table files, 1 MiB members, level 6, Node 20's zlib: 57–58
 * MiB/s per core against 48–49, and a slightly smaller output (0.6658 of the
 * input against 0.6676). Deflate's hash then has twice the entries: 128 KiB
 * more per member compressing, freed when it ends. The output is the same
 * format; every gunzip reads it.
 */
const MEM_LEVEL = 9;

export interface ParallelGzipOptions {
  /** zlib level 0–9. */
  level: number;
  /** Input bytes per gzip member. */
  chunkBytes?: number;
  /** Members compressed at once (thread-pool jobs in flight); default: available cores. */
  parallelism?: number;
  /**
   * Told of each written chunk once all its bytes are copied into a member: from then on the stream holds
   * no reference to it, and its memory may be filled again (see ReadBufferPool in read-buffers.ts).
   */
  onAbsorbed?: (chunk: Buffer) => void;
}

/** One chunk on its way through the thread pool; `output` is set once compressed. */
interface Member {
  inputBytes: number;
  output: Buffer | null;
}

/**
 * Transform-like duplex: bytes in, concatenated gzip members out, in input order.
 *
 * At most `parallelism` members compress at once: the libuv thread pool
 * (4 threads by default) is shared with fs reads, crypto and the rocksdb
 * binding, and one job more than cores measured only +3 %. The window of
 * members held — compressing, or compressed and waiting for their turn or for
 * the reader — is twice that, so one slow member at the head does not leave a
 * core idle.
 *
 * Memory is bounded whatever the input size: the 2 × parallelism members of
 * the window (a compressing one also has zlib's output buffer), the chunk
 * being filled, at most one member in the readable buffer:
 * ≤ (3 × parallelism + 2) chunks. A member only leaves the window once pushed
 * to the reader, so a slow reader stops compression and then, through
 * `_write`'s callback, the writer.
 */
export class ParallelGzip extends Duplex {
  readonly level: number;
  readonly chunkBytes: number;
  readonly parallelism: number;
  private readonly onAbsorbed: ((chunk: Buffer) => void) | undefined;

  /**
   * The next chunk, filled by copying writes into it. A copy, not references to
   * the written buffers: a writer may reuse its buffer once its write callback
   * has run, while the pool may still be compressing the chunk.
   */
  private filling: Buffer;
  private filled = 0;
  /**
   * Input chunks whose member is compressed, ready to be filled again. Reused,
   * never dropped: a new 1 MiB Buffer per member would leave tens of MiB of
   * dead ones waiting for a garbage collection (V8 collects external memory
   * lazily), and the worker's RSS with them. (zlib's output buffers are still
   * one per member: the async API allocates them.)
   */
  private readonly spare: Buffer[] = [];
  /** Members in input order; the head is the next one to push. */
  private readonly window: Member[] = [];
  private readonly windowLimit: number;
  /** Members whose compression is running in the thread pool. */
  private compressing = 0;
  /** Whether the reader asked for more since our last refused push. */
  private readerWants = false;
  private membersStarted = 0;
  /**
   * Woken whenever a compression ends, a member leaves the window, or the stream
   * is destroyed. One waiter at most: Writable never overlaps `_write`/`_final`.
   */
  private wake: (() => void) | null = null;
  private failed: Error | null = null;

  constructor(options: ParallelGzipOptions) {
    super({ allowHalfOpen: true });
    const { level, chunkBytes = DEFAULT_CHUNK_BYTES, parallelism = availableParallelism() } = options;
    if (!Number.isInteger(level) || level < 0 || level > 9) {
      throw new RangeError(`gzip level must be an integer 0–9, got ${String(level)}`);
    }
    if (!Number.isInteger(chunkBytes) || chunkBytes < 1) {
      throw new RangeError(`chunkBytes must be a positive integer, got ${String(chunkBytes)}`);
    }
    if (!Number.isInteger(parallelism) || parallelism < 1) {
      throw new RangeError(`parallelism must be a positive integer, got ${String(parallelism)}`);
    }
    this.level = level;
    this.chunkBytes = chunkBytes;
    this.parallelism = parallelism;
    this.onAbsorbed = options.onAbsorbed;
    this.windowLimit = 2 * parallelism;
    this.filling = Buffer.allocUnsafe(chunkBytes);
  }

  /**
   * Bytes this stream holds outside Node's own stream buffers: the chunk being
   * filled plus, per member in the window, its input while compressing or its
   * output once compressed. Add `writableLength` and `readableLength` for the total.
   */
  get heldBytes(): number {
    let held = this.filling.length;
    for (const m of this.window) held += m.output ? m.output.length : m.inputBytes;
    return held;
  }

  /** Members in the window (compressing, or waiting for the reader); never above 2 × `parallelism`. */
  get membersInFlight(): number {
    return this.window.length;
  }

  /** Members compressing in the thread pool right now; never above `parallelism`. */
  get membersCompressing(): number {
    return this.compressing;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // The callback (and so the next write) waits until every chunk this write fills has a slot in the window.
    this.absorb(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finish().then(() => callback(), callback);
  }

  override _read(): void {
    this.readerWants = true;
    this.pushReady();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Compressions already in the pool finish on their own; their results are dropped.
    this.failed = error ?? new Error('parallel gzip stream destroyed');
    this.filling = Buffer.alloc(0);
    this.filled = 0;
    this.window.length = 0;
    this.spare.length = 0;
    this.notify();
    callback(error);
  }

  /** Copies `chunk` into the chunk being filled, starting a member each time one is full. */
  private async absorb(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      // Destroyed while waiting for a slot: stop here (the chunk being filled is gone).
      if (this.failed) throw this.failed;
      const copied = chunk.copy(this.filling, this.filled, offset);
      offset += copied;
      this.filled += copied;
      if (this.filled === this.chunkBytes) await this.startMember(this.nextChunk());
    }
    this.onAbsorbed?.(chunk);
  }

  /** Hands over the chunk being filled (and how much of it is filled) and starts a new one, in a spare chunk if there is one. */
  private nextChunk(): { chunk: Buffer; length: number } {
    const handed = { chunk: this.filling, length: this.filled };
    this.filling = this.spare.pop() ?? Buffer.allocUnsafe(this.chunkBytes);
    this.filled = 0;
    return handed;
  }

  private async finish(): Promise<void> {
    // The tail, or one empty member so that empty input still gives a valid gzip file.
    if (this.filled > 0 || this.membersStarted === 0) {
      await this.startMember(this.nextChunk());
    }
    this.filling = Buffer.alloc(0);
    while (this.window.length > 0) await this.waitForSlotChange();
    this.push(null);
  }

  private async startMember({ chunk, length }: { chunk: Buffer; length: number }): Promise<void> {
    if (this.failed) throw this.failed;
    const input = chunk.subarray(0, length);
    while (this.compressing >= this.parallelism || this.window.length >= this.windowLimit) {
      await this.waitForSlotChange();
    }
    const member: Member = { inputBytes: input.length, output: null };
    this.window.push(member);
    this.membersStarted++;
    this.compressing++;
    gzip(input, { level: this.level, memLevel: MEM_LEVEL, chunkSize: outputBufferBytes(input.length) }, (err, output) => {
      if (this.failed) return;
      if (err) {
        this.destroy(err);
        return;
      }
      // zlib is done with the input: its whole chunk can be filled again.
      this.spare.push(chunk);
      this.compressing--;
      member.output = output;
      this.notify();
      this.pushReady();
    });
  }

  /** Pushes compressed members from the head of the window, in order, while the reader wants them. */
  private pushReady(): void {
    let freed = false;
    while (this.readerWants && !this.failed) {
      const head = this.window[0];
      if (!head?.output) break;
      this.window.shift();
      freed = true;
      this.readerWants = this.push(head.output);
    }
    if (freed) this.notify();
  }

  private waitForSlotChange(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<void>((resolve, reject) => {
      this.wake = () => (this.failed ? reject(this.failed) : resolve());
    });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

/**
 * zlib's output buffer for one member: large enough for the whole member.
 * With zlib's default 16 KiB, an async `gzip` of 1 MiB goes back and forth
 * between the thread pool and the event loop 64 times (once per 16 KiB of
 * output), and the core idles at every return: measured 1.5 of 2 cores busy
 * instead of 1.85, ≈30 % less throughput. The bound exceeds zlib's
 * deflateBound (n + n/4096 + n/16384 + 13, plus 18 bytes of gzip framing).
 */
function outputBufferBytes(inputBytes: number): number {
  return inputBytes + (inputBytes >> 11) + 1024;
}

/** A duplex that gzips what is written to it, compressing chunks in parallel; see ParallelGzip. */
export function createParallelGzip(options: ParallelGzipOptions): ParallelGzip {
  return new ParallelGzip(options);
}
