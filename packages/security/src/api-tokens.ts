import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CREDENTIAL_NAMES, credentialLabel, oneSource } from './systemd-credentials.js';

export const ROLES = ['admin', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenEntry {
  name: string;
  role: Role;
  sha256: Buffer;
}

export interface Caller {
  name: string;
  role: Role;
}

/**
 * The tokens file: one token a line as `<name> <role> sha256:<hex>` — the
 * SHA-256 of the token, never the token — `#` starts a comment. A line that
 * is not understood stops the start, with its number: a typo must not quietly
 * lock an operator out (or in).
 */
export function parseTokensFile(text: string, source = 'tokens file'): TokenEntry[] {
  const entries: TokenEntry[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const match = /^(\S+)\s+(\S+)\s+sha256:([0-9a-fA-F]{64})$/.exec(line);
    if (!match?.[1] || !match[2] || !match[3]) {
      throw new Error(`${source} line ${index + 1}: expected "<name> <role> sha256:<64 hex digits>"`);
    }
    if (!(ROLES as readonly string[]).includes(match[2])) {
      throw new Error(`${source} line ${index + 1}: role "${match[2]}" is not one of ${ROLES.join(', ')}`);
    }
    entries.push({ name: match[1], role: match[2] as Role, sha256: Buffer.from(match[3], 'hex') });
  });
  if (entries.length === 0) throw new Error(`${source} holds no token: nobody could use the api`);
  return entries;
}

/**
 * The tokens file the api reads: the file CHANGO_API_TOKENS_FILE names (`variable`), or the systemd
 * credential api-tokens (`credential`, its path when the unit passed one: systemdCredential). Exactly
 * one: none stops the start, as does both (which file would hold the tokens that count?).
 */
export function chooseTokensFile(variable: string | undefined, credential: string | undefined): string {
  const source = oneSource('api tokens file', [
    { label: 'CHANGO_API_TOKENS_FILE', value: variable },
    { label: credential ? credentialLabel(CREDENTIAL_NAMES.apiTokens, credential) : '', value: credential },
  ]);
  if (!source) {
    throw new Error(
      `CHANGO_API_TOKENS_FILE is not set and there is no systemd credential ${CREDENTIAL_NAMES.apiTokens}: the api does not start without a tokens file ` +
        `(make a token with: chango-backup token new --name NAME --role admin; under systemd: LoadCredential=${CREDENTIAL_NAMES.apiTokens}:/etc/chango-backup/api-tokens)`,
    );
  }
  return source.value;
}

export function loadTokensFile(path: string): TokenEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the tokens file ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  return parseTokensFile(text, path);
}

/** Finds the caller of a presented token, comparing against every entry in constant time. */
export function authenticate(entries: TokenEntry[], presented: string): Caller | undefined {
  const digest = createHash('sha256').update(presented, 'utf8').digest();
  let found: TokenEntry | undefined;
  for (const entry of entries) {
    // No early exit: the time taken does not tell which entry (if any) matched.
    if (timingSafeEqual(digest, entry.sha256) && !found) found = entry;
  }
  return found && { name: found.name, role: found.role };
}

/** A new random token and the tokens-file line that admits it. */
export function newToken(name: string, role: Role): { token: string; line: string } {
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name)) throw new Error('--name must be 1–64 letters, digits, dots, dashes, underscores or @');
  const token = `chb_${randomBytes(32).toString('base64url')}`;
  const sha = createHash('sha256').update(token, 'utf8').digest('hex');
  return { token, line: `${name} ${role} sha256:${sha}` };
}
