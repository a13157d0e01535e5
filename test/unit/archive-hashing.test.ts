import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { HashingCounter } from '@chango/archive';

test('HashingCounter passes bytes through unchanged and reports their SHA-256 and count', async () => {
  const pieces = [randomBytes(1), randomBytes(70_000), Buffer.alloc(0), randomBytes(3)];
  const counter = new HashingCounter();
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(pieces, { objectMode: false }),
    counter,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  const all = Buffer.concat(pieces);
  assert.ok(Buffer.concat(out).equals(all));
  assert.equal(counter.bytes, all.length);
  assert.equal(counter.sha256(), createHash('sha256').update(all).digest('hex'));
});

test('HashingCounter of nothing is the SHA-256 of the empty string', async () => {
  const counter = new HashingCounter();
  await pipeline(Readable.from([], { objectMode: false }), counter, new Writable({ write: (_c, _e, cb) => cb() }));
  assert.equal(counter.bytes, 0);
  assert.equal(counter.sha256(), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('HashingCounter refuses to give a digest before the stream has ended', () => {
  const counter = new HashingCounter();
  counter.write(Buffer.from('partial'));
  assert.throws(() => counter.sha256(), /before the stream ended/);
  counter.destroy();
});
