import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createParallelGzip, ReadBufferPool } from '@chango/archive';

test('a read buffer comes back only once every byte lent from it was absorbed, in whatever slices', () => {
  const pool = new ReadBufferPool(1024);
  const first = pool.take();
  const lent = pool.lend(first, 1000);
  assert.equal(lent.length, 1000);
  pool.absorbed(lent.subarray(0, 600));
  assert.notEqual(pool.take(), first, '400 bytes still on their way: not free');
  pool.absorbed(lent.subarray(600));
  assert.equal(pool.take(), first, 'all absorbed: reused');
});

test('a read buffer whose bytes were copied on the way is never reused, and an empty read frees it at once', () => {
  const pool = new ReadBufferPool(1024);
  const buffer = pool.take();
  const lent = pool.lend(buffer, 100);
  pool.absorbed(Buffer.from(lent)); // a copy: other memory
  assert.notEqual(pool.take(), buffer);
  const empty = pool.take();
  assert.equal(pool.lend(empty, 0).length, 0);
  assert.equal(pool.take(), empty);
});

test('bytes read into reused buffers come out of the parallel gzip unchanged, with a handful of buffers for 24 MiB', async () => {
  const pool = new ReadBufferPool(64 * 1024);
  const gzip = createParallelGzip({ level: 1, chunkBytes: 256 * 1024, parallelism: 2, onAbsorbed: (chunk) => pool.absorbed(chunk) });
  const source = randomBytes(24 * 1024 * 1024);
  // What a file read does: fill a buffer from the pool, hand its bytes on; here cut in two, as a tar writer may.
  async function* reads(): AsyncGenerator<Buffer> {
    for (let offset = 0; offset < source.length; ) {
      const buffer = pool.take();
      const bytes = source.copy(buffer, 0, offset, Math.min(offset + buffer.length, source.length));
      offset += bytes;
      const chunk = pool.lend(buffer, bytes);
      yield chunk.subarray(0, bytes >> 1);
      yield chunk.subarray(bytes >> 1);
    }
  }
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(reads(), { objectMode: false, highWaterMark: 64 * 1024 }),
    gzip,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        // A slow reader: the buffers in flight pile up as far as the streams let them.
        setImmediate(callback);
      },
    }),
  );
  assert.ok(gunzipSync(Buffer.concat(out)).equals(source), 'every byte as read, none overwritten by a later read');
  assert.ok(pool.size <= 8, `${pool.size} read buffers for ${source.length / 65536} reads`);
});
