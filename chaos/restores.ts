/**
 * "Every committed archive restores", checked the way an operator would on a fresh master:
 * download the archive and its sidecar from the real RGW (not through the fault proxy), compare
 * the download's SHA-256 with the sidecar, run `chango-backup restore --data-dir <fresh> --file
 * <download>` with the stack's root secret, then `state stats --json` on the restored stores
 * must equal the source's (records counted, every secret decrypted).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { runCli } from '../testkit/processes.js';
import type { World } from './harness.js';

export interface RestoreResult {
  key: string;
  ok: boolean;
  detail: string;
}

export async function restoreCommitted(world: World, key: string, sidecarText: string): Promise<RestoreResult> {
  const dir = await mkdtemp(join(tmpdir(), 'chango-chaos-restore-'));
  try {
    const file = join(dir, basename(key));
    await world.s3.fGetObject(world.bucket, key, file);
    const sha256 = await fileSha256(file);
    const expected = sidecarText.trim().split(/\s+/)[0] ?? '';
    if (sha256 !== expected) return { key, ok: false, detail: `${key}: the download's SHA-256 is ${sha256}, the sidecar says ${expected}` };
    await writeFile(`${file}.sha256`, sidecarText);
    const target = join(dir, 'data');
    const secret = { CHANGO_ROOT_SECRET_FILE: world.stack.secretFile };
    const restored = await runCli(['restore', '--data-dir', target, '--file', file], secret);
    if (restored.code !== 0) return { key, ok: false, detail: `${key}: restore exited ${restored.code}: ${lastLine(restored.stderr)}` };
    const stats = await runCli(['state', 'stats', '--json'], { ...secret, CHANGO_DATA_DIR: target });
    if (stats.code !== 0) return { key, ok: false, detail: `${key}: state stats of the restored stores exited ${stats.code}: ${lastLine(stats.stderr)}` };
    const got = JSON.parse(stats.stdout) as unknown;
    if (!isDeepStrictEqual(got, world.sourceStats)) {
      return { key, ok: false, detail: `${key}: restored stats ${JSON.stringify(got)} differ from the source's ${JSON.stringify(world.sourceStats)}` };
    }
    return { key, ok: true, detail: `${key}: restored, stats equal the source's` };
  } catch (err) {
    return { key, ok: false, detail: `${key}: ${(err as Error).message}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.slice(0, 400) ?? '';
}
