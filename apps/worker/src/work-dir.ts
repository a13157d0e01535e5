import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Prepares the folder checkpoints are staged in, removing whatever an earlier
 * run left there (a worker killed mid-backup cannot clean up after itself).
 * Only this worker uses the folder: it holds the stores' lock.
 */
export async function prepareWorkDir(workDir: string): Promise<string[]> {
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  const stale = await readdir(workDir);
  await Promise.all(stale.map((name) => rm(join(workDir, name), { recursive: true, force: true })));
  return stale;
}
