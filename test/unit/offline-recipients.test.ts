import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { generateHybridIdentity, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { AgeDecryptError, decryptingStream, encryptingStream, isAgeRecipient, looksAgeEncrypted, parseIdentityFile } from '@chango/security';

async function through(input: Buffer, stream: NodeJS.ReadWriteStream, pieceBytes = 7_000): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < input.length; at += pieceBytes) pieces.push(input.subarray(at, at + pieceBytes));
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), stream, new Writable({ write: (chunk: Buffer, _e, done) => (out.push(chunk), done()) }));
  return Buffer.concat(out);
}

async function pair(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

test('recipients: X25519 age1… with a valid checksum only', async () => {
  const { identity, recipient } = await pair();
  assert.ok(isAgeRecipient(recipient));
  const flipped = recipient.slice(0, -1) + (recipient.endsWith('q') ? 'p' : 'q');
  assert.ok(!isAgeRecipient(flipped), 'a typo breaks the bech32 checksum');
  assert.ok(!isAgeRecipient(identity), 'an identity is no recipient');
  assert.ok(!isAgeRecipient(recipient.toUpperCase()), 'upper case is not how age prints them');
  assert.ok(!isAgeRecipient(await identityToRecipient(await generateHybridIdentity())), 'post-quantum recipients: Debian age 1.1 cannot open them');
  assert.ok(!isAgeRecipient(''));
});

test('a round trip through the streams, in odd pieces, for one of several recipients; the output starts with the age header', async () => {
  const [a, b] = [await pair(), await pair()];
  // Around the 64 KiB chunk size: a full last chunk is a case of its own in age's STREAM.
  for (const size of [0, 1, 65_536, 65_537, 300_000]) {
    const plain = randomBytes(size);
    const sealed = await through(plain, encryptingStream([a.recipient, b.recipient]));
    assert.ok(looksAgeEncrypted(sealed));
    assert.ok(!looksAgeEncrypted(plain.length > 0 ? plain : Buffer.from([0x1f, 0x8b])));
    assert.deepEqual(await through(sealed, decryptingStream([b.identity])), plain, `size ${size}`);
  }
});

test('a wrong identity, a flipped byte and a cut-off end each fail the decryption, with their kind', async () => {
  const right = await pair();
  const wrong = await pair();
  const sealed = await through(randomBytes(200_000), encryptingStream([right.recipient]));
  const failure = async (bytes: Buffer, identities: string[]) =>
    through(bytes, decryptingStream(identities)).then(
      () => assert.fail('decrypted'),
      (err: unknown) => {
        assert.ok(err instanceof AgeDecryptError, String(err));
        return err.failure;
      },
    );
  assert.equal(await failure(sealed, [wrong.identity]), 'no-matching-identity');
  const flipped = Buffer.from(sealed);
  flipped[150_000] = (flipped[150_000] ?? 0) ^ 1;
  assert.equal(await failure(flipped, [right.identity]), 'not-authentic');
  assert.equal(await failure(sealed.subarray(0, sealed.length - 66_000), [right.identity]), 'not-authentic', 'a whole chunk cut off');
  assert.equal(await failure(sealed.subarray(0, 40), [right.identity]), 'not-authentic', 'the header cut off');
});

test('an identity file as age-keygen writes it; a bad line is named without showing what it holds', async () => {
  const { identity, recipient } = await pair();
  const file = `# created: 2026-11-29T10:00:00Z\n# public key: ${recipient}\n${identity}\n\n`;
  assert.deepEqual(parseIdentityFile(file, 'key.txt'), [identity]);
  assert.throws(() => parseIdentityFile('# only a comment\n', 'key.txt'), /key\.txt holds no age identity/);
  const broken = `${identity.slice(0, -2)}xx`;
  assert.throws(
    () => parseIdentityFile(`# public key: ${recipient}\n${broken}\n`, 'key.txt'),
    (err: Error) => /line 2 of the identity file key\.txt is not an age X25519 identity/.test(err.message) && !err.message.includes(broken),
  );
  assert.throws(() => encryptingStream([identity]), /not an age X25519 recipient/);
});
