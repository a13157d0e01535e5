/**
 * Seeded states, made once per process and copied for each case: seeding 8000 components takes
 * 5 s on an idle machine and 25 s on a busy one, a copy a fraction of that. Every copy shares
 * the template's root secret (each case still has its own data dir, Redis prefix, bucket). The
 * templates are removed when the process exits.
 */
import { rmSync } from 'node:fs';
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newRootSecret, tempDir, writeSecretFile, type CleanupScope } from '../testkit/fixtures.js';
import { runCli } from '../testkit/processes.js';

interface Template {
  dataDir: string;
  rootSecret: string;
}

const templates = new Map<string, Promise<Template>>();
const dirs: string[] = [];
process.once('exit', () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh copy of a state seeded with `users` and `components` (made on first use), removed by `t`. */
export async function seededCopy(t: CleanupScope, users: number, components: number): Promise<{ dataDir: string; rootSecret: string }> {
  const key = `${users}/${components}`;
  let template = templates.get(key);
  if (!template) {
    template = makeTemplate(users, components);
    templates.set(key, template);
    template.catch(() => templates.delete(key));
  }
  const { dataDir, rootSecret } = await template;
  const copy = join(await tempDir(t, 'chango-chaos-data'), 'data');
  await cp(dataDir, copy, { recursive: true });
  return { dataDir: copy, rootSecret };
}

async function makeTemplate(users: number, components: number): Promise<Template> {
  const dir = await mkdtemp(join(tmpdir(), 'chango-chaos-template-'));
  dirs.push(dir);
  const rootSecret = newRootSecret();
  const secretFile = await writeSecretFile(dir, rootSecret);
  const dataDir = join(dir, 'data');
  const seeded = await runCli(['state', 'seed', '--users', String(users), '--components', String(components)], { CHANGO_DATA_DIR: dataDir, CHANGO_ROOT_SECRET_FILE: secretFile });
  if (seeded.code !== 0) throw new Error(`seeding the template state failed: ${seeded.stderr}`);
  return { dataDir, rootSecret };
}
