import { readFileSync } from 'node:fs';
import { Duplex, PassThrough, Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Decrypter, Encrypter } from 'age-encryption';

/**
 * Archives encrypted to offline recipients, in the age format
 * (https://age-encryption.org/v1), by the well-kept `age-encryption` library:
 * X25519 recipients (`age1…`) only, so that Debian's `age` 1.1 — and any
 * other age implementation — opens what we write. The operator keeps the
 * identity (`AGE-SECRET-KEY-1…`) offline: a stored archive is useless
 * without it, even to someone who also holds the root secret.
 *
 * The payload is age's STREAM: 64 KiB chunks, each authenticated, the last one
 * flagged, so a truncated, reordered or altered object fails to decrypt.
 */

/** The first bytes of every age file (the binary format's version line). */
export const AGE_MAGIC = 'age-encryption.org/v1\n';

/** An X25519 recipient: `age1` and 58 bech32 characters (post-quantum and plugin recipients are longer or otherwise prefixed). */
const X25519_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/** Whether `value` is a valid age X25519 recipient (shape and bech32 checksum). */
export function isAgeRecipient(value: string): boolean {
  if (!X25519_RECIPIENT.test(value)) return false;
  try {
    new Encrypter().addRecipient(value);
    return true;
  } catch {
    return false;
  }
}

/** Whether `head` (an object's first bytes) starts like an age file. */
export function looksAgeEncrypted(head: Buffer): boolean {
  return head.subarray(0, AGE_MAGIC.length).toString('latin1') === AGE_MAGIC;
}

/**
 * A Duplex that encrypts what is written to it for `recipients`: the age
 * header first, then the payload as it comes, with backpressure end to end
 * (memory stays a few 64 KiB chunks). An invalid recipient throws here.
 */
export function encryptingStream(recipients: readonly string[]): Duplex {
  if (recipients.length === 0) throw new Error('encrypting needs at least one age recipient');
  const encrypter = new Encrypter();
  for (const recipient of recipients) {
    if (!isAgeRecipient(recipient)) throw new Error(`not an age X25519 recipient (age1…): ${recipient.slice(0, 80)}`);
    encrypter.addRecipient(recipient);
  }
  const plaintext = new PassThrough();
  const ciphertext = new PassThrough();
  encrypter
    .encrypt(Readable.toWeb(plaintext) as unknown as ReadableStream<Uint8Array>)
    .then((encrypted) => Readable.fromWeb(encrypted as unknown as WebReadableStream<Uint8Array>).on('error', (err) => ciphertext.destroy(err)).pipe(ciphertext))
    .catch((err: unknown) => ciphertext.destroy(err instanceof Error ? err : new Error(String(err))));
  return joined(plaintext, ciphertext);
}

/** Why an age-encrypted archive could not be opened. */
export type DecryptFailure =
  /** None of the identities given is a recipient of the file (or its header's recipient stanzas are damaged). */
  | 'no-matching-identity'
  /** The header or a payload chunk does not authenticate: truncated, damaged or altered. */
  | 'not-authentic';

export class AgeDecryptError extends Error {
  override readonly name = 'AgeDecryptError';
  constructor(
    readonly failure: DecryptFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A Duplex that decrypts an age file written to it with `identities`
 * (`AGE-SECRET-KEY-1…` strings): the header is read and a file key found
 * before any plaintext comes out. Fails (destroyed with an AgeDecryptError)
 * when no identity opens the file or a chunk does not authenticate.
 */
export function decryptingStream(identities: readonly string[]): Duplex {
  const decrypter = new Decrypter();
  for (const identity of identities) decrypter.addIdentity(identity);
  const ciphertext = new PassThrough();
  const plaintext = new PassThrough();
  decrypter
    .decrypt(Readable.toWeb(ciphertext) as unknown as ReadableStream<Uint8Array>)
    .then((decrypted) =>
      Readable.fromWeb(decrypted as unknown as WebReadableStream<Uint8Array>)
        .on('error', (err) => plaintext.destroy(new AgeDecryptError('not-authentic', `its encrypted payload does not authenticate (${err.message})`, { cause: err })))
        .pipe(plaintext),
    )
    .catch((err: unknown) => plaintext.destroy(headerFailure(err)));
  return joined(ciphertext, plaintext);
}

/**
 * The identities in an age identity file (what `age-keygen` writes): one
 * `AGE-SECRET-KEY-1…` per line, `#` comments and blank lines ignored. Throws
 * in words that never contain a key: which line is wrong, and how many keys.
 */
export function parseIdentityFile(text: string, fileName: string): string[] {
  const identities: string[] = [];
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      if (!line.startsWith('AGE-SECRET-KEY-1')) throw new Error('not an identity');
      new Decrypter().addIdentity(line);
    } catch {
      throw new Error(
        `line ${index + 1} of the identity file ${fileName} is not an age X25519 identity: each line must be AGE-SECRET-KEY-1… (as age-keygen writes it), a # comment, or blank`,
      );
    }
    identities.push(line);
  }
  if (identities.length === 0) throw new Error(`the identity file ${fileName} holds no age identity (AGE-SECRET-KEY-1…): it is empty or only comments`);
  return identities;
}

/**
 * The identities in the identity file at `path` (what --identity and
 * CHANGO_AGE_IDENTITY_FILE name). Refuses in words a file it cannot read or
 * parse; the words never hold a key.
 */
export function loadIdentityFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new Error(`cannot read the age identity file ${path} (${code}): give the path of the file age-keygen wrote`);
  }
  return parseIdentityFile(text, path);
}

/** One Duplex of a writable side and the readable side it feeds; destroying either destroys both. */
function joined(writable: PassThrough, readable: PassThrough): Duplex {
  const duplex = Duplex.from({ writable, readable });
  readable.once('error', (err) => writable.destroy(err));
  return duplex;
}

function headerFailure(err: unknown): AgeDecryptError {
  const message = err instanceof Error ? err.message : String(err);
  if (/no identity matched/.test(message)) {
    return new AgeDecryptError('no-matching-identity', 'none of the identities given is a recipient of it', { cause: err });
  }
  return new AgeDecryptError('not-authentic', `its age header cannot be read or does not authenticate (${message})`, { cause: err });
}
