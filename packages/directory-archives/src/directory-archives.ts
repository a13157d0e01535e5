import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashingCounter } from '@chango/archive';
import { parseBackupKey, parseSidecar, SIDECAR_SUFFIX, sidecarBody, VERIFY_SUFFIX, type BackupObject } from '@chango/contracts';

/** What a copy must be: its size and checksum, as the backup committed them. */
export interface ArchiveFacts {
  size: number;
  sha256: string;
}

/** One archive in a month folder, as its name and a stat tell it. */
export interface DirectoryEntry {
  name: string;
  /** Whether its `.sha256` sidecar exists: a committed copy. */
  committed: boolean;
}

/** An archive opened for reading, with the checksum its sidecar holds (null: never committed). */
export interface OpenedDirectoryArchive {
  key: string;
  path: string;
  stream: Readable;
  size: number;
  sidecarSha256: string | null;
}

/** Bytes that are not the archive they claim to be: the source changed after its backup committed. */
export class NotTheArchive extends Error {
  override readonly name = 'NotTheArchive';
}

const MONTH = /^\d{4}-\d{2}$/;
/** A copy being written: `.<name>.partial-<uuid>`, renamed to `<name>` once whole and synced. */
const PARTIAL = /^\.(.+)\.partial-[0-9a-f-]{36}$/;

/**
 * Backups in a local directory (an NFS mount, a removable disk): the second
 * copy's other kind of target, and what the CLI reads with `--dir`.
 *
 * Layout: `<root>/<YYYY-MM>/<archive name>` and `<archive name>.sha256` (the
 * same `sha256sum` line as in S3), the month taken from the time in the name.
 * Month folders keep every step's cost to the backups of a month or two, not
 * the whole history: the newest are found by reading the newest months, the
 * oldest by reading the oldest.
 *
 * A copy is committed as in S3: written to a hidden partial file, hashed on
 * the way and checked against the backup's checksum, synced, renamed into
 * place, and only then the sidecar written (also through a synced rename).
 * A crash leaves a partial file (removed by retention once a day old) or an
 * archive without its sidecar (not a backup; removed likewise) — never a
 * sidecar vouching for bytes that are not whole.
 *
 * The root must exist: a missing mount point is refused in words rather than
 * created (an unmounted disk would otherwise fill the system's own disk).
 */
export class DirectoryArchives {
  private readonly streams = new Set<{ destroy(error?: Error): void }>();

  constructor(readonly root: string) {}

  /** Writes one archive and commits it; returns its path. `name` is the archive's base name (chango-<time>-<uuid>.tar.gz[.age]). */
  async store(name: string, source: Readable, facts: ArchiveFacts): Promise<string> {
    const month = monthOf(name);
    await this.requireRoot();
    const folder = join(this.root, month);
    await mkdirOnce(folder);
    const final = join(folder, name);
    // An attempt that committed and then died (before its job recorded it) is done: never copied twice.
    if ((await this.readSidecar(name)) === facts.sha256 && (await stat(final).catch(() => undefined))?.size === facts.size) {
      source.destroy();
      return final;
    }
    const partial = join(folder, `.${name}.partial-${randomUUID()}`);
    const counted = new HashingCounter();
    const sink = createWriteStream(partial, { flags: 'wx', mode: 0o600 });
    this.streams.add(sink);
    try {
      await pipeline(source, counted, sink);
      assertTheArchive(counted, facts, `the bytes given for ${name}`);
      await syncFile(partial);
      await rename(partial, final);
      await writeSynced(folder, `${name}${SIDECAR_SUFFIX}`, sidecarBody(name, facts.sha256));
      await syncFile(folder);
      return final;
    } catch (err) {
      source.destroy();
      await rm(partial, { force: true }).catch(() => undefined);
      throw err;
    } finally {
      this.streams.delete(sink);
    }
  }

  /** Writes the outcome of a drill of `name` beside it (`<name>.verify.json`), whole or not at all. */
  async recordVerification(name: string, record: unknown): Promise<void> {
    const folder = join(this.root, monthOf(name));
    await writeSynced(folder, `${name}${VERIFY_SUFFIX}`, `${JSON.stringify(record, null, 2)}\n`);
  }

  /** Ends every write under way with `reason` (a job's watchdog, SIGTERM). */
  abort(reason: Error): void {
    for (const stream of this.streams) stream.destroy(reason);
  }

  /** The month folders, oldest first. */
  async months(): Promise<string[]> {
    await this.requireRoot();
    return (await readdir(this.root)).filter((name) => MONTH.test(name)).sort();
  }

  /**
   * The month folders, oldest first, and the entries of the oldest that holds
   * anything; empty month folders met on the way are removed (so they never
   * pile up at the oldest end). Undefined when no folder holds anything.
   */
  async monthEntriesFromOldest(): Promise<{ all: string[]; oldest: { month: string; entries: { archives: DirectoryEntry[]; partials: string[] } } } | undefined> {
    const all = await this.months();
    for (const [index, month] of all.entries()) {
      const entries = await this.monthEntries(month);
      if (entries.archives.length > 0 || entries.partials.length > 0) return { all: all.slice(index), oldest: { month, entries } };
      await rmdir(join(this.root, month)).catch(() => undefined);
    }
    return undefined;
  }

  /** The archives of one month folder, oldest first (names sort by time), and the partial files left there. */
  async monthEntries(month: string): Promise<{ archives: DirectoryEntry[]; partials: string[] }> {
    const names = await readdir(join(this.root, month)).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
    const present = new Set(names);
    const archives = names
      .filter((name) => parseBackupKey('', name) !== undefined)
      .sort()
      .map((name) => ({ name, committed: present.has(`${name}${SIDECAR_SUFFIX}`) }));
    return { archives, partials: names.filter((name) => PARTIAL.test(name)) };
  }

  /**
   * One page of backups, newest first: at most `limit`, all older than
   * `before` when given. Reads month folders from the newest until the page
   * is full, and stats and reads sidecars only of what it shows.
   */
  async page(options: { limit: number; before?: string | undefined }): Promise<{ objects: BackupObject[]; next: string | null }> {
    const limit = Math.max(1, options.limit);
    const picked: DirectoryEntry[] = [];
    const months = (await this.months()).reverse();
    const startMonth = options.before ? monthOf(options.before) : undefined;
    for (const month of months) {
      if (startMonth && month > startMonth) continue;
      const { archives } = await this.monthEntries(month);
      for (const entry of archives.reverse()) {
        if (options.before && entry.name >= options.before) continue;
        picked.push(entry);
        if (picked.length > limit) break;
      }
      if (picked.length > limit) break;
    }
    const shown = picked.slice(0, limit);
    const objects = await Promise.all(shown.map((entry) => this.describe(entry)));
    return { objects, next: picked.length > limit ? (shown.at(-1)?.name ?? null) : null };
  }

  /** The newest committed backup whose sidecar holds a checksum, or undefined. */
  async newestComplete(): Promise<BackupObject | undefined> {
    for (const month of (await this.months()).reverse()) {
      for (const entry of (await this.monthEntries(month)).archives.reverse()) {
        if (!entry.committed) continue;
        const object = await this.describe(entry);
        if (object.complete) return object;
      }
    }
    return undefined;
  }

  /** Opens an archive for reading, with its sidecar's checksum. */
  async open(name: string): Promise<OpenedDirectoryArchive> {
    const path = join(this.root, monthOf(name), name);
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      throw new Error(err.code === 'ENOENT' ? `no backup ${name} in ${this.root} (looked for ${path})` : `cannot read ${path} (${err.code ?? err.message})`);
    });
    const stream = createReadStream(path);
    return { key: name, path, stream, size: info.size, sidecarSha256: (await this.readSidecar(name)) ?? null };
  }

  /** Removes backups (archive, sidecar, drill record), and a month folder left empty. Only names of our archives are accepted. */
  async remove(names: readonly string[]): Promise<void> {
    for (const name of names) {
      const folder = join(this.root, monthOf(name));
      await Promise.all([name, `${name}${SIDECAR_SUFFIX}`, `${name}${VERIFY_SUFFIX}`].map((file) => rm(join(folder, file), { force: true })));
      await rmdir(folder).catch(() => undefined);
    }
  }

  /** Removes partial files of `month` (copies a crash cut short); returns their paths. */
  async removePartials(month: string, partials: readonly string[]): Promise<string[]> {
    const paths = partials.map((name) => join(this.root, month, name));
    await Promise.all(paths.map((path) => rm(path, { force: true })));
    await rmdir(join(this.root, month)).catch(() => undefined);
    return paths;
  }

  /** The checksum in `<name>.sha256`; undefined when there is none or it does not hold one. */
  async readSidecar(name: string): Promise<string | undefined> {
    const body = await readFile(join(this.root, monthOf(name), `${name}${SIDECAR_SUFFIX}`), 'utf8').catch(() => undefined);
    return body === undefined ? undefined : parseSidecar(body);
  }

  private async describe(entry: DirectoryEntry): Promise<BackupObject> {
    const path = join(this.root, monthOf(entry.name), entry.name);
    const [info, sha256] = await Promise.all([stat(path), entry.committed ? this.readSidecar(entry.name) : Promise.resolve(undefined)]);
    return { key: entry.name, size: info.size, lastModified: info.mtime.toISOString(), sha256: sha256 ?? null, complete: sha256 !== undefined, verify: null };
  }

  private async requireRoot(): Promise<void> {
    const info = await stat(this.root).catch((err: NodeJS.ErrnoException) => {
      throw new Error(
        `the copy directory ${this.root} ${err.code === 'ENOENT' ? 'does not exist' : `cannot be read (${err.code ?? err.message})`}: mount the disk or create the directory (it is never created for you: an unmounted disk would fill the system's own)`,
      );
    });
    if (!info.isDirectory()) throw new Error(`the copy directory ${this.root} is not a directory`);
  }
}

/**
 * Throws NotTheArchive when the bytes that went through `counted` (`what`, in
 * words) are not the ones the backup committed: whichever target a copy goes
 * to, such bytes never become a copy.
 */
export function assertTheArchive(counted: HashingCounter, facts: ArchiveFacts, what: string): void {
  const sha256 = counted.sha256();
  if (counted.bytes !== facts.size || sha256 !== facts.sha256) {
    throw new NotTheArchive(`${what} are ${counted.bytes} bytes with sha256 ${sha256}, but the backup committed ${facts.size} bytes with sha256 ${facts.sha256}: not copied`);
  }
}

/** The month folder of an archive name (from the time in it); throws for a name that is not one of our archives. */
export function monthOf(name: string): string {
  const parsed = parseBackupKey('', name);
  if (!parsed) throw new Error(`${JSON.stringify(name.slice(0, 200))} is not a chango backup name (chango-<YYYYMMDDTHHMMSSZ>-<uuid>.tar.gz or .tar.gz.age)`);
  return parsed.timestamp.toISOString().slice(0, 7);
}

async function mkdirOnce(folder: string): Promise<void> {
  await mkdir(folder, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => (err.code === 'EEXIST' ? undefined : Promise.reject(err)));
}

/** fsync of a file or folder: what was written (or renamed into it) is on the disk. */
async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a small file through a synced partial file and a rename: it is there whole or not at all. */
async function writeSynced(folder: string, name: string, body: string): Promise<void> {
  const partial = join(folder, `.${name}.partial-${randomUUID()}`);
  // Replacing an older drill record is a rename over it: readers see the old one or the new one.
  const handle = await open(partial, 'wx', 0o600);
  try {
    await handle.writeFile(body);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(partial, join(folder, name));
}
