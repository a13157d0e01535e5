import { statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The names the systemd units give the files they pass (deploy/systemd: `LoadCredential=<name>:<path>`).
 * systemd copies each into the service's credentials directory when the service starts, readable by the
 * service's user only, and names that directory in CREDENTIALS_DIRECTORY: the secret never passes
 * through the environment, and the file it came from can stay root's alone.
 */
export const CREDENTIAL_NAMES = {
  rootSecret: 'root-secret',
  apiTokens: 'api-tokens',
  ageIdentity: 'age-identity',
} as const;

export interface CredentialsEnv {
  CREDENTIALS_DIRECTORY?: string | undefined;
}

/**
 * The path of the systemd credential `name` — `$CREDENTIALS_DIRECTORY/<name>` — when the service was given
 * one by that name; undefined when CREDENTIALS_DIRECTORY is not set or holds no such file. Whether the
 * file can be read is for its reader to say, naming it.
 */
export function systemdCredential(env: CredentialsEnv, name: string): string | undefined {
  const dir = env.CREDENTIALS_DIRECTORY;
  if (!dir) return undefined;
  const path = join(dir, name);
  try {
    statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new Error(`cannot look for the systemd credential ${name} at ${path} (CREDENTIALS_DIRECTORY) (${code ?? 'unreadable'})`);
  }
  return path;
}

/** How a systemd credential is named in messages: its name, where it is, and where it comes from. */
export function credentialLabel(name: string, path: string): string {
  return `the systemd credential ${name} (${path}, from the unit's LoadCredential=)`;
}

/** One way of giving a setting: its words for messages (a variable's name, a credential's label) and what it gives, if anything. */
export interface SettingSource<T> {
  label: string;
  value: T | undefined;
}

/**
 * The one source that gives a setting (`what`, e.g. "cluster root secret") among its ways of being given:
 * a variable, a file's variable, a systemd credential. Undefined when none gives it. Two or more is
 * refused in words naming them all: the operator must say which one is meant rather than learn it from
 * which one wins — a stale variable left beside a new credential must not decide which secret or which
 * tokens are used.
 */
export function oneSource<T>(what: string, sources: SettingSource<T>[]): { label: string; value: T } | undefined {
  const given = sources.filter((source): source is { label: string; value: T } => source.value !== undefined && source.value !== '');
  if (given.length > 1) {
    const labels = given.map((source) => source.label);
    const list = `${labels.slice(0, -1).join(', by ')} and by ${labels.at(-1) ?? ''}`;
    throw new AmbiguousSetting(`the ${what} is given ${given.length === 2 ? 'twice' : `${given.length} times`}: by ${list}; give it one way only, so it is clear which one is meant`);
  }
  return given[0];
}

/** A setting given more than one way (oneSource). */
export class AmbiguousSetting extends Error {
  override readonly name = 'AmbiguousSetting';
}
