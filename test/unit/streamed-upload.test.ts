import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { multipartEtag, streamParts, type PartSink } from '@chango/s3';

/** A sink that keeps what it was sent, answers each part's MD5 as its ETag (as S3 does), and counts parts in flight. */
function recordingSink(options: { failPart?: number; delayMs?: number } = {}) {
  const received: Buffer[] = [];
  let inFlight = 0;
  let mostInFlight = 0;
  const sink: PartSink = {
    async uploadPart(partNumber, body, md5) {
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, options.delayMs ?? 1));
        if (partNumber === options.failPart) throw new Error(`part ${partNumber} refused`);
        assert.deepEqual(md5, createHash('md5').update(body).digest(), `part ${partNumber} carries its own MD5`);
        received[partNumber - 1] = Buffer.from(body);
        return `"${md5.toString('hex')}"`;
      } finally {
        inFlight--;
      }
    },
  };
  return { sink, received, mostInFlight: () => mostInFlight };
}

/** `bytes` of random data as a stream of uneven chunks, the way gzip members come out. */
function unevenStream(data: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0, size = 1; at < data.length; at += size, size = (size * 7) % 9000 + 1) chunks.push(data.subarray(at, at + size));
  return Readable.from(chunks);
}

test('the stream is cut into parts of exactly partBytes (the last shorter) that put back together are the bytes, with their checksum and multipart ETag', async () => {
  const data = randomBytes(10 * 1024 + 123);
  const { sink, received } = recordingSink();
  const sent = await streamParts(unevenStream(data), sink, { partBytes: 4096 });
  assert.deepEqual(received.map((part) => part.length), [4096, 4096, 2048 + 123]);
  assert.deepEqual(Buffer.concat(received), data);
  assert.equal(sent.size, data.length);
  assert.equal(sent.sha256, createHash('sha256').update(data).digest('hex'));
  assert.deepEqual(sent.parts.map((p) => p.part), [1, 2, 3]);
  assert.equal(sent.expectedEtag, multipartEtag(received.map((part) => createHash('md5').update(part).digest())));
  assert.match(sent.expectedEtag, /^[0-9a-f]{32}-3$/);
});

test('a stream that ends on a part boundary sends no empty last part; an empty stream sends one empty part', async () => {
  const exact = recordingSink();
  await streamParts(unevenStream(randomBytes(8192)), exact.sink, { partBytes: 4096 });
  assert.deepEqual(exact.received.map((part) => part.length), [4096, 4096]);
  const empty = recordingSink();
  const sent = await streamParts(Readable.from([]), empty.sink, { partBytes: 4096 });
  assert.deepEqual(empty.received.map((part) => part.length), [0]);
  assert.equal(sent.sha256, createHash('sha256').digest('hex'));
});

test('one part is on the wire while the next fills, never more: memory stays at two parts', async () => {
  const { sink, mostInFlight } = recordingSink({ delayMs: 5 });
  const sent: number[] = [];
  await streamParts(unevenStream(randomBytes(64 * 1024)), sink, { partBytes: 4096, onPartSent: (bytes) => sent.push(bytes) });
  assert.equal(mostInFlight(), 1);
  assert.equal(sent.at(-1), 64 * 1024, 'the progress ends at every byte acknowledged');
});

test('a refused part fails the upload with its error, and the rest of the stream is not read', async () => {
  const data = randomBytes(64 * 1024);
  let handedOut = 0;
  const source = Readable.from((function* () {
    for (let at = 0; at < data.length; at += 1024) {
      handedOut += 1024;
      yield data.subarray(at, at + 1024);
    }
  })());
  const { sink } = recordingSink({ failPart: 2 });
  await assert.rejects(streamParts(source, sink, { partBytes: 4096 }), /part 2 refused/);
  assert.ok(handedOut < data.length, `read ${handedOut} of ${data.length} bytes before giving up`);
});

test('a failing source (the archive could not be made) fails the upload with its own error, after the part in flight settled', async () => {
  const { sink } = recordingSink({ delayMs: 20 });
  const source = new Readable({ read() {} });
  source.push(randomBytes(5000));
  setTimeout(() => source.destroy(new Error('metadata/000012.sst changed since the manifest was built')), 5);
  await assert.rejects(streamParts(source, sink, { partBytes: 4096 }), /changed since the manifest was built/);
});
