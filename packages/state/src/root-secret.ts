import { readFileSync } from 'node:fs';
import { StateError } from './errors.js';

/** The shortest root secret we accept, in bytes (DESIGN.md: at least 32 bytes of entropy). */
export const MIN_ROOT_SECRET_BYTES = 32;

export interface RootSecretEnv {
  CHANGO_ROOT_SECRET_FILE?: string | undefined;
  CHANGO_ROOT_SECRET?: string | undefined;
}

/**
 * Reads the operator's cluster root secret from the file named by
 * CHANGO_ROOT_SECRET_FILE, or from CHANGO_ROOT_SECRET. Exactly one must be set.
 *
 * A file's single trailing newline is dropped, because `echo … > file` and
 * editors add one and the operator means the line, not the line ending.
 * The secret is used as raw bytes (HKDF input), whatever its encoding.
 */
export function loadRootSecret(env: RootSecretEnv = process.env): Buffer {
  const file = env.CHANGO_ROOT_SECRET_FILE;
  const inline = env.CHANGO_ROOT_SECRET;
  if (file && inline) {
    throw new StateError(
      'ROOT_SECRET_AMBIGUOUS',
      'both CHANGO_ROOT_SECRET_FILE and CHANGO_ROOT_SECRET are set; set only one so it is clear which cluster root secret is meant',
    );
  }
  let secret: Buffer;
  if (file) {
    try {
      secret = stripOneTrailingNewline(readFileSync(file));
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new StateError(
        'ROOT_SECRET_UNREADABLE',
        `cannot read the cluster root secret file ${file} (${reason})`,
      );
    }
  } else if (inline) {
    secret = Buffer.from(inline, 'utf8');
  } else {
    throw new StateError(
      'ROOT_SECRET_MISSING',
      'no cluster root secret: set CHANGO_ROOT_SECRET_FILE to a file holding it (or CHANGO_ROOT_SECRET); ' +
        'it is the secret the cluster was created with and is never stored in the state or the backup',
    );
  }
  if (secret.length < MIN_ROOT_SECRET_BYTES) {
    throw new StateError(
      'ROOT_SECRET_TOO_SHORT',
      `the cluster root secret is ${secret.length} bytes; at least ${MIN_ROOT_SECRET_BYTES} are required ` +
        `(make one with: head -c 48 /dev/urandom | base64)`,
    );
  }
  return secret;
}

function stripOneTrailingNewline(buf: Buffer): Buffer {
  let end = buf.length;
  if (end > 0 && buf[end - 1] === 0x0a) end--;
  if (end > 0 && buf[end - 1] === 0x0d) end--;
  return buf.subarray(0, end);
}
