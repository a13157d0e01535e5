import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createParallelGzip, DEFAULT_CHUNK_BYTES, type ParallelGzip } from '@chango/archive';
import { waitFor } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';

const MiB = 1024 * 1024;
/** The CommonJS zlib object: replacing its `gzip` and syncing builtin exports reaches the package's `import { gzip }`. */
const zlibCjs = createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib');

/** Writes `input` in `writeBytes` pieces and collects what comes out, one array item per pushed member. */
async function compress(gz: ParallelGzip, input: Buffer, writeBytes = 64 * 1024): Promise<Buffer[]> {
  const members: Buffer[] = [];
  const pieces = (function* () {
    for (let off = 0; off < input.length; off += writeBytes) yield input.subarray(off, off + writeBytes);
  })();
  await pipeline(
    Readable.from(pieces, { objectMode: false }),
    gz,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        members.push(chunk);
        callback();
      },
    }),
  );
  return members;
}

for (const [label, size] of [
  ['empty input', 0],
  ['1 byte', 1],
  ['exactly one chunk', DEFAULT_CHUNK_BYTES],
  ['one chunk + 1 byte', DEFAULT_CHUNK_BYTES + 1],
  ['10 MiB random', 10 * MiB + 12345],
] as const) {
  test(`parallel gzip round-trips ${label}, one gzip member per chunk`, async () => {
    const input = randomBytes(size);
    const members = await compress(createParallelGzip({ level: 1 }), input);
    const output = Buffer.concat(members);

    // Multi-member gzip decodes as one stream.
    assert.ok(gunzipSync(output).equals(input), 'gunzip of the whole output is the input');
    // Each member is a complete gzip file holding its own chunk, in input order.
    const expectedMembers = Math.max(1, Math.ceil(size / DEFAULT_CHUNK_BYTES));
    assert.equal(members.length, expectedMembers);
    members.forEach((member, i) => {
      const chunk = input.subarray(i * DEFAULT_CHUNK_BYTES, (i + 1) * DEFAULT_CHUNK_BYTES);
      assert.ok(gunzipSync(member).equals(chunk), `member ${i} holds chunk ${i}`);
    });
  });
}

test('members come out in input order even when later chunks finish first; compressions stay within parallelism', async (t) => {
  const realGzip = zlibCjs.gzip;
  const chunkBytes = 64 * 1024;
  const input = randomBytes(12 * chunkBytes + 5);
  const chunks = Math.ceil(input.length / chunkBytes);
  let running = 0;
  let maxRunning = 0;
  let started = 0;
  const finishedOrder: number[] = [];
  // Finished compressions are held back until every compression running has finished and the event loop has turned
  // once with none started (the stream starts all it may at once, as input comes in), then handed back newest first:
  // later chunks finish first by construction, not by a delay a busy machine could stretch.
  const held: { index: number; deliver: () => void }[] = [];
  const releaseWhenAllDone = (): void => {
    if (held.length === 0 || held.length !== running) return;
    for (const { index, deliver } of held.splice(0).sort((a, b) => b.index - a.index)) {
      running--;
      finishedOrder.push(index);
      deliver();
    }
  };
  t.mock.method(zlibCjs, 'gzip', (input: Buffer, options: object, callback: (err: Error | null, out: Buffer) => void) => {
    const index = started++;
    running++;
    maxRunning = Math.max(maxRunning, running);
    realGzip(input, options, (err, out) => {
      held.push({ index, deliver: () => callback(err, out) });
      setImmediate(releaseWhenAllDone);
    });
  });
  syncBuiltinESMExports();
  t.after(() => {
    t.mock.restoreAll();
    syncBuiltinESMExports();
  });

  const members = await compress(createParallelGzip({ level: 1, chunkBytes, parallelism: 4 }), input, 10_000);

  assert.equal(started, chunks, 'the mock really compressed every chunk');
  assert.equal(finishedOrder.length, chunks);
  assert.notDeepEqual(finishedOrder, [...finishedOrder].sort((a, b) => a - b), 'compressions finished out of order');
  assert.equal(maxRunning, 4, 'four compressions ran at once, never more');
  assert.ok(gunzipSync(Buffer.concat(members)).equals(input), 'output is the input, in order');
  members.forEach((member, i) => {
    assert.ok(gunzipSync(member).equals(input.subarray(i * chunkBytes, (i + 1) * chunkBytes)), `member ${i} in place`);
  });
});

// The timeout is the safety net: a stream that never ends fails there.
test('an upstream error ends the gzip output with that error', { timeout: SAFETY_NET_MS }, async () => {
  const gz = createParallelGzip({ level: 1, chunkBytes: 64 * 1024 });
  const failing = new Readable({
    read() {
      this.push(randomBytes(100 * 1024));
      this.destroy(new Error('disk read failed'));
    },
  });
  const seen = once(gz, 'error');
  await assert.rejects(
    pipeline(failing, gz, new Writable({ write: (_c, _e, cb) => cb() })),
    /disk read failed/,
  );
  const [err] = (await seen) as [Error];
  assert.match(err.message, /disk read failed/, 'the gzip stream itself emitted the upstream error');
  assert.ok(gz.destroyed);
});

test('a compression failure ends the output with an error', async (t) => {
  let calls = 0;
  const realGzip = zlibCjs.gzip;
  t.mock.method(zlibCjs, 'gzip', (input: Buffer, options: object, callback: (err: Error | null, out?: Buffer) => void) => {
    if (++calls === 3) setImmediate(() => callback(new Error('zlib: out of memory')));
    else realGzip(input, options, callback);
  });
  syncBuiltinESMExports();
  t.after(() => {
    t.mock.restoreAll();
    syncBuiltinESMExports();
  });
  await assert.rejects(compress(createParallelGzip({ level: 1, chunkBytes: 64 * 1024 }), randomBytes(1 * MiB)), /out of memory/);
});

test('a bad level is refused up front', () => {
  assert.throws(() => createParallelGzip({ level: 10 }), RangeError);
  assert.throws(() => createParallelGzip({ level: 6, parallelism: 0 }), RangeError);
});

test('memory stays bounded: 200 MiB through a slow reader never holds more than a few chunks', async () => {
  const chunkBytes = 1 * MiB;
  const parallelism = 2;
  const writeBytes = 64 * 1024;
  const total = 200 * MiB;
  // Level 0 (stored) keeps members as large as their input and costs little CPU, so the reader is the bottleneck.
  const gz = createParallelGzip({ level: 0, chunkBytes, parallelism });
  const pattern = randomBytes(MiB);

  let peakHeld = 0;
  let peakCompressing = 0;
  let peakWindow = 0;
  const sample = (): void => {
    peakHeld = Math.max(peakHeld, gz.writableLength + gz.heldBytes + gz.readableLength);
    peakCompressing = Math.max(peakCompressing, gz.membersCompressing);
    peakWindow = Math.max(peakWindow, gz.membersInFlight);
  };

  let received = 0;
  const slowReader = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      sample();
      setTimeout(callback, 3);
    },
  });
  const consumed = pipeline(gz, slowReader);

  let refusedWrites = 0;
  for (let sent = 0; sent < total; sent += writeBytes) {
    const offset = sent % MiB;
    // Views of one buffer: the test itself allocates nothing per write.
    const ok = gz.write(pattern.subarray(offset, offset + writeBytes));
    sample();
    if (!ok) {
      refusedWrites++;
      await once(gz, 'drain');
    }
  }
  gz.end();
  await consumed;

  const bound = (2 * parallelism + 2) * chunkBytes + 2 * writeBytes;
  assert.ok(received > total, `everything went through (${received} bytes out)`);
  assert.ok(refusedWrites > 50, `the writer was held back (${refusedWrites} refused writes)`);
  assert.ok(peakCompressing <= parallelism, `compressions at once: ${peakCompressing}`);
  assert.ok(peakWindow <= 2 * parallelism, `members held: ${peakWindow}`);
  assert.ok(peakHeld <= bound, `held at most ${(peakHeld / MiB).toFixed(2)} MiB, bound ${(bound / MiB).toFixed(2)} MiB`);
  assert.ok(peakHeld >= 2 * chunkBytes, `the measure saw members pile up (${(peakHeld / MiB).toFixed(2)} MiB)`);
});

test('with no reader at all, the stream stops taking input once its window is full', async () => {
  const chunkBytes = 256 * 1024;
  const parallelism = 2;
  const gz = createParallelGzip({ level: 0, chunkBytes, parallelism });
  const piece = randomBytes(64 * 1024);
  const written = 40 * piece.length; // 10 chunks
  for (let i = 0; i < 40; i++) gz.write(piece); // ignoring backpressure on purpose
  // Until it is idle: members taken in, none compressing. With input left and no reader, that is the stream refusing
  // more (the assertions say whether its window was full then), seen as soon as it happens; the safety net bounds a
  // stream that never idles.
  await waitFor('the stream to stop compressing', async () => (gz.membersInFlight > 0 && gz.membersCompressing === 0 ? true : undefined), SAFETY_NET_MS, 5);

  const absorbed = gz.heldBytes + gz.readableLength;
  assert.equal(gz.membersInFlight, 2 * parallelism, 'the window is full');
  assert.ok(absorbed <= (2 * parallelism + 1) * chunkBytes + piece.length, `absorbed ${absorbed} bytes`);
  assert.ok(gz.writableLength >= written - absorbed - chunkBytes, `the rest waits in the writable buffer (${gz.writableLength})`);
  gz.destroy();
});
