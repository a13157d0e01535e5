import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SAFETY_NET_MS } from './liveness.js';

/** Where cleanups are registered: a test's context, or a Scope a suite runs itself. */
export interface CleanupScope {
  after(fn: () => unknown): void;
}

/** Cleanups for a whole `describe`: register in `before`, run them with `run()` in `after`. */
export class SuiteScope implements CleanupScope {
  private readonly cleanups: (() => unknown)[] = [];
  after(fn: () => unknown): void {
    this.cleanups.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.cleanups.reverse()) await fn();
  }
}

/** A fresh folder under the OS temp dir, removed when the test (or suite scope) ends. */
export async function tempDir(t: CleanupScope, label = 'chango-test'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${label}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A random root secret of the kind an operator would make (48 random bytes, base64). */
export function newRootSecret(): string {
  return randomBytes(48).toString('base64');
}

/** Writes a root secret into a 0600 file, as an operator would, and returns its path. */
export async function writeSecretFile(dir: string, secret: string, name = 'root-secret'): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `${secret}\n`, { mode: 0o600 });
  return path;
}

/** Every file below `dir`, recursively. */
export async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** The files below `dir` whose bytes contain `needle`. */
export async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const pattern = Buffer.from(needle, 'utf8');
  const hits: string[] = [];
  for (const file of await filesBelow(dir)) {
    if ((await readFile(file)).includes(pattern)) hits.push(file);
  }
  return hits;
}

/**
 * Polls `probe` until it returns a value other than undefined (at once when it does); fails naming
 * `what` after `timeoutMs`. Pass a bound derived from the interval waited on (liveness.ts); the
 * default is the safety net, for waits on work with no interval behind it (a backup, a drill).
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = SAFETY_NET_MS, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      // A probe that never settles must not hold the wait past its deadline.
      const ms = Math.max(0, deadline - Date.now()) + everyMs;
      const value = await settleWithin(probe(), ms, `a probe for ${what} did not settle within ${ms} ms`);
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * `work`, or a rejection with `timeoutMessage` once `ms` have passed without it settling: the one
 * bound for waits of the test harness (probes, one-off Redis commands, cleanups).
 */
export async function settleWithin<T>(work: Promise<T>, ms: number, timeoutMessage: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(timeoutMessage)), ms);
  });
  try {
    return await Promise.race([work, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every entry below `dir`: folders, files with their SHA-256 and mode, links with their target. */
export async function treeState(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (path: string, rel: string): Promise<void> => {
    const info = await lstat(path);
    const mode = (info.mode & 0o777).toString(8);
    if (info.isSymbolicLink()) out[rel] = `link ${await readlink(path)}`;
    else if (info.isDirectory()) {
      out[rel] = `dir ${mode}`;
      for (const name of (await readdir(path)).sort()) await walk(join(path, name), rel === '' ? name : `${rel}/${name}`);
    } else out[rel] = `file ${mode} ${createHash('sha256').update(await readFile(path)).digest('hex')}`;
  };
  await walk(dir, '');
  return out;
}
