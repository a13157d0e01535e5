import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, realpath, rm, stat, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { DIR_MODE, FILE_MODE } from '@chango/state';
import { quoteName, RestoreError } from './errors.js';

/** Modes fixed by the design, whatever the archive says: the stores hold secrets. */

/**
 * O_EXCL: never reuse or truncate an existing file. O_NOFOLLOW: never write
 * through a symlink someone planted where our file goes. Together they are
 * what `tar --no-overwrite-dir --no-same-owner` cannot promise.
 */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export interface WrittenFile {
  size: number;
  sha256: string;
}

/**
 * The folder an archive is extracted into, and everything written below it.
 *
 * Only relative paths that the entry policy accepted reach this class; it
 * still checks, for every folder it creates, that the folder's real path is
 * where it should be inside the target (nothing swapped a component for a
 * symlink meanwhile), and creates files exclusively without following links.
 * It remembers what it created, so a failed extraction can remove exactly that.
 */
export class TargetTree {
  /** Folders created so far, as relative POSIX paths ('kms', 'metadata/archive'). */
  private readonly dirs = new Set<string>();

  private constructor(
    /** The target's real path: every path built below starts from it. */
    readonly root: string,
    private readonly createdRoot: boolean,
  ) {}

  /** Takes `targetDir`, which must not exist (it is then created 0700) or be an empty folder. */
  static async prepare(targetDir: string): Promise<TargetTree> {
    let created = false;
    try {
      const existing = await stat(targetDir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
      if (existing === null) {
        await mkdir(targetDir, { recursive: true, mode: DIR_MODE });
        await chmod(targetDir, DIR_MODE);
        created = true;
      } else if (!existing.isDirectory()) {
        throw new RestoreError('TARGET_INVALID', `cannot extract into ${targetDir}: it exists and is not a folder`);
      } else if ((await readdir(targetDir)).length > 0) {
        throw new RestoreError('TARGET_INVALID', `cannot extract into ${targetDir}: it is not empty, and an archive is only extracted into an empty folder`);
      }
      return new TargetTree(await realpath(targetDir), created);
    } catch (err) {
      if (created) await rm(targetDir, { recursive: true, force: true }).catch(() => undefined);
      if (err instanceof RestoreError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw new RestoreError('TARGET_INVALID', `cannot prepare ${targetDir} to extract into (${e.code ?? e.message}); check the path and its permissions`, { cause: err });
    }
  }

  hasDir(relative: string): boolean {
    return this.dirs.has(relative);
  }

  /** Creates `relative` and any missing parent, each 0700, checking each lands where it should. */
  async ensureDir(relative: string): Promise<void> {
    const segments = relative.split('/');
    for (let depth = 1; depth <= segments.length; depth++) {
      const dir = segments.slice(0, depth).join('/');
      if (this.dirs.has(dir)) continue;
      const absolute = this.absolute(dir);
      try {
        // Not recursive: EEXIST means something we did not create is in the way.
        await mkdir(absolute, { mode: DIR_MODE });
        await chmod(absolute, DIR_MODE);
      } catch (err) {
        throw this.writeFailed(dir, err);
      }
      await this.assertInside(dir);
      this.dirs.add(dir);
    }
  }

  /**
   * Writes `content` to the new file `relative` (0600), hashing it as it goes.
   * Each chunk is written before the next is read, so memory holds one chunk.
   * The file is fsynced: these are the bytes the stores will run on.
   */
  async writeFile(relative: string, content: AsyncIterable<Buffer>): Promise<WrittenFile> {
    const slash = relative.lastIndexOf('/');
    const parent = relative.slice(0, slash);
    await this.ensureDir(parent);
    // Re-checked per file, not only when the folder was made: the window for a swapped-in link stays small.
    await this.assertInside(parent);
    let handle: FileHandle;
    try {
      handle = await open(this.absolute(relative), CREATE_FLAGS, FILE_MODE);
    } catch (err) {
      throw this.writeFailed(relative, err);
    }
    const hash = createHash('sha256');
    let size = 0;
    // Errors of the disk are TARGET_INVALID; errors of `content` (the archive) pass through as they are.
    const onDisk = async (work: () => Promise<void>): Promise<void> => {
      try {
        await work();
      } catch (err) {
        throw this.writeFailed(relative, err);
      }
    };
    try {
      // The mode given to open() passes through the umask; set it exactly.
      await onDisk(() => handle.chmod(FILE_MODE));
      for await (const chunk of content) {
        hash.update(chunk);
        size += chunk.length;
        await onDisk(() => writeAll(handle, chunk));
      }
      await onDisk(() => handle.sync());
    } finally {
      await handle.close();
    }
    return { size, sha256: hash.digest('hex') };
  }

  /** fsyncs every folder created, so the new names are as durable as the files' bytes. */
  async syncDirs(): Promise<void> {
    for (const dir of ['', ...this.dirs]) await syncDir(dir === '' ? this.root : this.absolute(dir));
  }

  /** Removes what this tree wrote: the whole target if it created it, else the top-level folders it made. */
  async removeWritten(): Promise<void> {
    if (this.createdRoot) {
      await rm(this.root, { recursive: true, force: true });
      return;
    }
    for (const dir of this.dirs) {
      if (!dir.includes('/')) await rm(this.absolute(dir), { recursive: true, force: true });
    }
  }

  private absolute(relative: string): string {
    return join(this.root, ...relative.split('/'));
  }

  /** Throws unless `relative` is a real folder (no symlink on the way) exactly where it should be. */
  private async assertInside(relative: string): Promise<void> {
    const expected = this.absolute(relative);
    const [real, info] = await Promise.all([realpath(expected), lstat(expected)]).catch((err: unknown) => {
      throw this.writeFailed(relative, err);
    });
    if (real !== expected || !real.startsWith(this.root + sep) || !info.isDirectory()) {
      throw new RestoreError(
        'ARCHIVE_UNSAFE_ENTRY',
        `the folder ${quoteName(relative)} being extracted resolves to ${real}, outside ${this.root}: something replaced it with a link while extracting. Nothing more was written; check who else writes to ${this.root}.`,
      );
    }
  }

  private writeFailed(relative: string, err: unknown): RestoreError {
    const e = err as NodeJS.ErrnoException;
    return new RestoreError(
      'TARGET_INVALID',
      `cannot write ${quoteName(relative)} under ${this.root} (${e.code ?? e.message}): ` +
        (e.code === 'EEXIST' || e.code === 'ELOOP'
          ? 'something else is writing into this folder'
          : 'check free space and permissions'),
      { cause: err },
    );
  }
}

/** handle.write may write less than asked; loop until the chunk is on its way to disk. */
async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

/** fsyncs a folder, so the names in it (a rename, a new file) are as durable as the files' bytes. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
