import { execFile as execFileCb } from 'node:child_process';
import { lchown, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { quoteName, RestoreError } from './errors.js';

const execFile = promisify(execFileCb);

/** Who the restored stores belong to: the user the worker runs as. */
export interface Owner {
  uid: number;
  gid: number;
  /** As the operator wrote it ('chango:chango'), for reports. */
  spec: string;
}

/** Largest valid id: (uid_t)-1 means "unchanged" to chown, so it is refused. */
const MAX_ID = 0xfffffffe;
/** Names as useradd/groupadd accept them (and never starting with '-', which a tool would read as an option). */
const NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/u;

/**
 * Parses 'user:group' (names or numbers) into ids. Names are resolved the way
 * the system does it, NSS included (LDAP, sssd): `id -u NAME` and
 * `getent group NAME`. An unknown user or group is a TARGET_INVALID naming it,
 * before anything is read or written.
 */
export async function resolveOwner(spec: string): Promise<Owner> {
  const parts = spec.split(':');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw new RestoreError('TARGET_INVALID', `owner ${quoteName(spec)} is not of the form user:group (names or numeric ids), e.g. chango:chango`);
  }
  const [user, group] = parts as [string, string];
  return { uid: await resolveId('user', user), gid: await resolveId('group', group), spec };
}

async function resolveId(kind: 'user' | 'group', name: string): Promise<number> {
  if (/^\d+$/u.test(name)) {
    const id = Number(name);
    if (id > MAX_ID) throw new RestoreError('TARGET_INVALID', `${kind} id ${name} is out of range`);
    return id;
  }
  if (!NAME.test(name)) throw unknown(kind, name, 'not a valid name');
  let stdout: string;
  try {
    ({ stdout } = kind === 'user' ? await execFile('id', ['-u', '--', name]) : await execFile('getent', ['group', '--', name]));
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw unknown(kind, name, `\`${kind === 'user' ? 'id' : 'getent'}\` is not installed to look it up; give the numeric id instead`);
    throw unknown(kind, name, `no such ${kind} on this host`);
  }
  // id -u prints the uid; getent prints name:password:gid:members.
  const field = kind === 'user' ? stdout.trim() : stdout.trim().split(':')[2];
  if (field === undefined || !/^\d+$/u.test(field)) throw unknown(kind, name, `the lookup answered ${quoteName(stdout.trim())}`);
  return Number(field);
}

function unknown(kind: 'user' | 'group', name: string, why: string): RestoreError {
  return new RestoreError(
    'TARGET_INVALID',
    `cannot give the restored stores to ${kind} ${quoteName(name)}: ${why}. Create the ${kind} first, or name the one the chango worker runs as.`,
  );
}

/**
 * chown -R without following links (lchown): every entry below `path`, and
 * `path` itself. The trees are ours (just extracted, or the stores moved
 * aside), but a link in them must never hand a file elsewhere to the owner.
 */
export async function chownTree(path: string, owner: Owner): Promise<void> {
  await lchown(path, owner.uid, owner.gid);
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) await chownTree(child, owner);
    else await lchown(child, owner.uid, owner.gid);
  }
}
