/**
 * Restore benchmark: how long a restore on a fresh master takes (the
 * operator's recovery time) for a state of at least BENCH_RESTORE_MIB
 * (default 256) MiB. The archive is made by the real writer from a checkpoint
 * of the seeded state and kept as a local file with its .sha256, then restored
 * three ways, each into an empty data dir, all in this run:
 *   - baseline: the spec's manual procedure, `sha256sum -c` then GNU `tar -xzf`;
 *   - `chango-backup restore --file` without the root secret (checksum, every
 *     file against the manifest, safe extraction, staged swap);
 *   - the same with the root secret (plus: open the stores, decrypt the KEKs and
 *     every secret, compare record counts) — what the restore drill does too.
 * Also the CLI's peak RSS (GNU time's maximum resident set size).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createArchiveStream, HashingCounter } from '@chango/archive';
import { sidecarBody } from '@chango/contracts';
import { SuiteScope, tempDir, writeSecretFile } from '../testkit/fixtures.js';
import { childEnv, CLI } from '../testkit/processes.js';
import { checkpointWithManifest } from '../testkit/sized-state.js';
import { seededState } from './support.js';

const TARGET_MIB = Number(process.env.BENCH_RESTORE_MIB ?? 256);

interface Timed {
  ms: number;
  peakRssMiB: number | null;
}

/** Runs a command to completion under GNU time; its wall time and maximum RSS. */
function timedCommand(command: string, args: string[], env: Record<string, string> = {}): Timed {
  const started = performance.now();
  const run = spawnSync('/usr/bin/time', ['-f', 'maxrss_kb=%M', command, ...args], { env: childEnv(env), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const ms = performance.now() - started;
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${run.status}): ${run.stderr}`);
  const kb = /maxrss_kb=(\d+)/.exec(run.stderr)?.[1];
  return { ms: Math.round(ms), peakRssMiB: kb ? Math.round(Number(kb) / 1024) : null };
}

async function main(): Promise<void> {
  const scope = new SuiteScope();
  try {
    const work = await tempDir(scope, 'chango-bench-restore');
    const { dataDir, rootSecret, stateMiB } = await seededState(work, TARGET_MIB);
    const secretFile = await writeSecretFile(work, rootSecret);

    // The archive, as the worker makes it: a checkpoint, its manifest, tar + parallel gzip members.
    const checkpointDir = join(work, 'checkpoint');
    const manifest = await checkpointWithManifest(dataDir, rootSecret, checkpointDir);
    const archive = join(work, 'chango-bench.tar.gz');
    const hashed = new HashingCounter();
    await pipeline(createArchiveStream(checkpointDir, manifest, { gzipLevel: 6 }), hashed, createWriteStream(archive));
    await writeFile(`${archive}.sha256`, sidecarBody(basename(archive), hashed.sha256()));
    execFileSync('sync');

    const baselineDir = join(work, 'restored-baseline');
    await mkdir(baselineDir);
    const baseline = timedCommand('bash', ['-c', `set -e; cd ${work} && sha256sum -c --quiet ${basename(archive)}.sha256 && tar -xzf ${archive} -C ${baselineDir}`]);
    const plain = timedCommand(process.execPath, [CLI, 'restore', '--file', archive, '--data-dir', join(work, 'restored-plain')]);
    const checked = timedCommand(process.execPath, [CLI, 'restore', '--file', archive, '--data-dir', join(work, 'restored-checked')], { CHANGO_ROOT_SECRET_FILE: secretFile });

    const checkpointMiB = Object.values(manifest.stores).reduce((sum, s) => sum + s.files.reduce((n, f) => n + f.size, 0), 0) / 2 ** 20;
    const figures = {
      stateMiB: Number(stateMiB.toFixed(1)),
      checkpointMiB: Number(checkpointMiB.toFixed(1)),
      archiveMiB: Number((hashed.bytes / 2 ** 20).toFixed(1)),
      baselineSha256TarXzfMs: baseline.ms,
      restoreMs: plain.ms,
      ratioRestoreToBaseline: Number((plain.ms / baseline.ms).toFixed(2)),
      restoreWithRootSecretMs: checked.ms,
      ratioRestoreWithRootSecretToBaseline: Number((checked.ms / baseline.ms).toFixed(2)),
      cliPeakRssMiB: plain.peakRssMiB,
      cliPeakRssWithRootSecretMiB: checked.peakRssMiB,
    };
    console.log('');
    console.log(`state ${figures.stateMiB} MiB on disk; checkpoint ${figures.checkpointMiB} MiB; archive ${figures.archiveMiB} MiB`);
    console.log(`baseline sha256sum -c && tar -xzf                 ${figures.baselineSha256TarXzfMs} ms`);
    console.log(`chango-backup restore --file                      ${figures.restoreMs} ms  (ratio ${figures.ratioRestoreToBaseline}, peak RSS ${figures.cliPeakRssMiB} MiB)`);
    console.log(`chango-backup restore --file, with root secret    ${figures.restoreWithRootSecretMs} ms  (ratio ${figures.ratioRestoreWithRootSecretToBaseline}, peak RSS ${figures.cliPeakRssWithRootSecretMiB} MiB)`);
    await mkdir('bench/out', { recursive: true });
    await writeFile(`bench/out/restore-${TARGET_MIB}MiB.json`, `${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    await scope.run();
  }
}

await main();
