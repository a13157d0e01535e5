import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CleanupScope } from './fixtures.js';

const run = promisify(execFile);

/**
 * A small filesystem of its own (a tmpfs of `sizeMiB`), to fill up on purpose:
 * what a full work disk looks like to the worker. Mounting needs root — the
 * tests run as root here and in CI (they install Debian packages too).
 */
export async function mountSmallFilesystem(t: CleanupScope, sizeMiB: number): Promise<{ dir: string; resize(sizeMiB: number): Promise<void> }> {
  if (process.getuid?.() !== 0) throw new Error('mounting a small tmpfs needs root (the test suite runs as root, as CI does)');
  const dir = await mkdtemp(join(tmpdir(), 'chango-small-fs-'));
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir]);
  t.after(async () => {
    await run('umount', ['-l', dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, resize: async (size) => void (await run('mount', ['-o', `remount,size=${size}m`, dir])) };
}
