import { STORE_NAMES, type StoreName } from '@chango/state';
import { quoteName, RestoreError } from './errors.js';

/**
 * Which tar entries a Chango backup may contain, decided from the header alone,
 * before a single byte is written for the entry.
 *
 * The archive comes from outside (a bucket anyone with its credentials can
 * write to), and the extraction runs as root, so a name or type we did not
 * write ourselves is treated as an attack: absolute paths, `..`, backslashes,
 * NUL and control characters, and every entry type other than a regular file or
 * a folder (symlinks, hard links, devices, FIFOs could all make a later write
 * land outside the target, or plant something that is not data). Names are
 * also required to be canonical (no `.` or empty segments): the archive writer
 * never produces them, and refusing them means a path in the archive and in
 * the manifest can only be equal in one spelling.
 */

/** What the extractor does with an entry that passed the safety checks. */
export type EntryPlan =
  /** `manifest.json` at the top: must be the first entry, once. */
  | { kind: 'manifest' }
  /** A store folder or a folder below one; `path` has no trailing slash, e.g. `metadata/archive`. */
  | { kind: 'directory'; path: string; store: StoreName }
  /** A regular file below a store folder, e.g. `iam/000012.sst`. */
  | { kind: 'file'; path: string; store: StoreName }
  /**
   * A harmless-looking plain name outside the allowed set (`README`, `data/x`):
   * as the first entry it means "no manifest", later it is refused as unsafe.
   * The extractor decides, since only it knows the entry's position.
   */
  | { kind: 'outside'; path: string };

/** The header fields the policy looks at (tar-stream's Header has more). */
export interface EntryHeader {
  name: string;
  /** tar-stream's type name; null for a type flag it does not know. */
  type: string | null;
  linkname?: string | null;
}

const TYPE_WORDS: Record<string, string> = {
  symlink: 'a symbolic link',
  link: 'a hard link',
  'character-device': 'a character device',
  'block-device': 'a block device',
  fifo: 'a FIFO (named pipe)',
  'contiguous-file': 'a contiguous file (tar type 7)',
};

const ADVICE = 'Nothing was written for it. This archive was not written by chango-backup or was altered: do not restore it; use another backup.';

/** Classifies one entry, or throws ARCHIVE_UNSAFE_ENTRY naming the entry and what is wrong with it. */
export function planEntry(header: EntryHeader): EntryPlan {
  const { name, type } = header;
  const shown = quoteName(name);
  const unsafe = (why: string): RestoreError => new RestoreError('ARCHIVE_UNSAFE_ENTRY', `archive entry ${shown} ${why}. ${ADVICE}`);

  if (type !== 'file' && type !== 'directory') {
    const what = (type !== null && TYPE_WORDS[type]) || `of an unknown tar type (${type === null ? 'unrecognised type flag' : type})`;
    const target = header.linkname ? ` pointing to ${quoteName(header.linkname)}` : '';
    throw unsafe(`is ${what}${target}; a backup holds only regular files and folders`);
  }
  const problem = pathProblem(name, type === 'directory');
  if (problem) throw unsafe(problem);

  const path = type === 'directory' ? name.replace(/\/$/u, '') : name;
  const segments = path.split('/');
  const top = segments[0] ?? '';
  if (path === 'manifest.json' && type === 'file') return { kind: 'manifest' };
  if (isStoreName(top)) {
    if (type === 'directory') return { kind: 'directory', path, store: top };
    if (segments.length >= 2) return { kind: 'file', path, store: top };
    throw unsafe(`is a file where the ${top}/ store folder belongs`);
  }
  return { kind: 'outside', path };
}

/** The ARCHIVE_UNSAFE_ENTRY for an `outside` entry met after the manifest. */
export function outsideEntryError(path: string): RestoreError {
  return new RestoreError(
    'ARCHIVE_UNSAFE_ENTRY',
    `archive entry ${quoteName(path)} is outside kms/, iam/, metadata/ and manifest.json, the only entries a backup has. ${ADVICE}`,
  );
}

/**
 * Why `name` is not a plain relative POSIX path, or null if it is. Folders may
 * end in one slash (tar's convention). Shared with the manifest schema, whose
 * paths must obey the same rules.
 */
export function pathProblem(name: string, isDirectory = false): string | null {
  if (name === '') return 'has an empty name';
  if (name.includes('\0')) return 'has a NUL byte in its name';
  if (/[\u0000-\u001f\u007f]/u.test(name)) return 'has a control character in its name';
  if (name.startsWith('/')) return 'is an absolute path';
  if (name.includes('\\')) return 'has a backslash in its name';
  const path = isDirectory ? name.replace(/\/$/u, '') : name;
  const segments = path.split('/');
  if (segments.includes('..')) return "climbs out of the target with '..'";
  if (segments.some((s) => s === '' || s === '.')) return "is not a plain relative path (empty or '.' segment)";
  return null;
}

function isStoreName(name: string): name is StoreName {
  return (STORE_NAMES as readonly string[]).includes(name);
}
