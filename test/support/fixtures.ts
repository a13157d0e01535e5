import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
