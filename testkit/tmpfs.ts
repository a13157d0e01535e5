/**
 * A small filesystem for the work dir (the "disk full" case): a tmpfs of a given size, mounted
 * on a fresh folder, grown in place with `remount,size=` (its files stay), and always unmounted
 * in cleanup — a tmpfs left mounted outlives the run. Needs root (CI runs as root); `isRoot()`
 * lets the case report "skipped: needs root" instead.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CleanupScope } from './fixtures.js';

const run = promisify(execFile);
/** mount/umount are instant; this bounds a hung one. */
const COMMAND_BOUND_MS = 30_000;

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export class Tmpfs {
  private mounted = false;

  private constructor(readonly dir: string) {}

  /** Mounts a tmpfs of `size` (mount's syntax: '20m') on a new folder; unmounted and removed by `t`. */
  static async mount(t: CleanupScope, size: string): Promise<Tmpfs> {
    const dir = await mkdtemp(join(tmpdir(), 'chango-chaos-tmpfs-'));
    const fs = new Tmpfs(dir);
    t.after(() => fs.unmount());
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { timeout: COMMAND_BOUND_MS });
    fs.mounted = true;
    return fs;
  }

  /** Grows (or shrinks) it in place; what is on it stays. */
  async resize(size: string): Promise<void> {
    await run('mount', ['-o', `remount,size=${size}`, this.dir], { timeout: COMMAND_BOUND_MS });
  }

  /** Unmounts (lazily if something still holds it open: a killed worker's files) and removes the folder. */
  async unmount(): Promise<void> {
    if (this.mounted) {
      try {
        await run('umount', [this.dir], { timeout: COMMAND_BOUND_MS });
      } catch {
        await run('umount', ['-l', this.dir], { timeout: COMMAND_BOUND_MS });
      }
      this.mounted = false;
    }
    await rmdir(this.dir).catch(() => undefined);
  }
}
