import { readFileSync } from 'node:fs';
import { AmbiguousSetting, CREDENTIAL_NAMES, credentialLabel, oneSource, systemdCredential, type CredentialsEnv } from '@chango/security';
import { StateError } from './errors.js';

/** The shortest root secret we accept, in bytes (DESIGN.md: at least 32 bytes of entropy). */
export const MIN_ROOT_SECRET_BYTES = 32;

export interface RootSecretEnv extends CredentialsEnv {
  CHANGO_ROOT_SECRET_FILE?: string | undefined;
  CHANGO_ROOT_SECRET?: string | undefined;
}

/** Where the root secret comes from: a file (CHANGO_ROOT_SECRET_FILE or the systemd credential), or the variable itself. */
export type RootSecretSource =
  | { from: 'CHANGO_ROOT_SECRET_FILE'; path: string }
  | { from: 'CHANGO_ROOT_SECRET'; value: string }
  | { from: 'credential'; path: string };

/**
 * Which of its three ways gives the cluster root secret: the file CHANGO_ROOT_SECRET_FILE names, the
 * variable CHANGO_ROOT_SECRET, or the systemd credential root-secret (`credential`: its path,
 * $CREDENTIALS_DIRECTORY/root-secret, when the unit passed one). Exactly one may: none is undefined,
 * two or more are refused naming them (ROOT_SECRET_AMBIGUOUS). No precedence on purpose: a variable
 * left in an environment file beside the unit's credential must not quietly decide which secret opens
 * the stores. Pure: the caller says whether the credential exists.
 */
export function chooseRootSecretSource(env: RootSecretEnv, credential: string | undefined): RootSecretSource | undefined {
  let source: { label: string; value: RootSecretSource } | undefined;
  try {
    source = oneSource<RootSecretSource>('cluster root secret', [
      { label: 'CHANGO_ROOT_SECRET_FILE', value: env.CHANGO_ROOT_SECRET_FILE ? { from: 'CHANGO_ROOT_SECRET_FILE', path: env.CHANGO_ROOT_SECRET_FILE } : undefined },
      { label: 'CHANGO_ROOT_SECRET', value: env.CHANGO_ROOT_SECRET ? { from: 'CHANGO_ROOT_SECRET', value: env.CHANGO_ROOT_SECRET } : undefined },
      { label: credential ? credentialLabel(CREDENTIAL_NAMES.rootSecret, credential) : '', value: credential ? { from: 'credential', path: credential } : undefined },
    ]);
  } catch (err) {
    if (err instanceof AmbiguousSetting) throw new StateError('ROOT_SECRET_AMBIGUOUS', err.message);
    throw err;
  }
  return source?.value;
}

/**
 * Reads the operator's cluster root secret from the one place it is given (chooseRootSecretSource):
 * CHANGO_ROOT_SECRET_FILE, CHANGO_ROOT_SECRET, or the systemd credential root-secret.
 *
 * A file's single trailing newline is dropped, because `echo … > file` and
 * editors add one and the operator means the line, not the line ending.
 * The secret is used as raw bytes (HKDF input), whatever its encoding.
 */
export function loadRootSecret(env: RootSecretEnv = process.env): Buffer {
  const source = chooseRootSecretSource(env, systemdCredential(env, CREDENTIAL_NAMES.rootSecret));
  let secret: Buffer;
  if (!source) {
    const credentials = env.CREDENTIALS_DIRECTORY
      ? `; the systemd credentials directory ${env.CREDENTIALS_DIRECTORY} (CREDENTIALS_DIRECTORY) holds no ${CREDENTIAL_NAMES.rootSecret}`
      : `, or under systemd pass it with LoadCredential=${CREDENTIAL_NAMES.rootSecret}:/etc/chango-backup/root-secret`;
    throw new StateError(
      'ROOT_SECRET_MISSING',
      `no cluster root secret: set CHANGO_ROOT_SECRET_FILE to a file holding it (or CHANGO_ROOT_SECRET)${credentials}; ` +
        'it is the secret the cluster was created with and is never stored in the state or the backup',
    );
  }
  if (source.from === 'CHANGO_ROOT_SECRET') {
    secret = Buffer.from(source.value, 'utf8');
  } else {
    try {
      secret = stripOneTrailingNewline(readFileSync(source.path));
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      const what = source.from === 'credential' ? `the systemd credential ${CREDENTIAL_NAMES.rootSecret} at` : 'the cluster root secret file';
      throw new StateError('ROOT_SECRET_UNREADABLE', `cannot read ${what} ${source.path} (${reason})`);
    }
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
