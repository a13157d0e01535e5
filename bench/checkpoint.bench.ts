/**
 * Checkpoint benchmark: for a seeded state of at least BENCH_STATE_MIB (default
 * 100) MiB on disk, how long a consistent checkpoint takes while a writer keeps
 * committing, and how long that writer was held back — next to a plain `cp -r`
 * of the same folders in the same run (the baseline: a copy with no
 * consistency at all). Prints ratios, not verdicts; figures go to bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { STORE_NAMES } from '@chango/state';
import { newRootSecret } from '../testkit/fixtures.js';
import { startProvisioningWriter } from '../testkit/provisioning-writer.js';
import { seedUntil, sizeMiB } from '../testkit/sized-state.js';

const TARGET_MIB = Number(process.env.BENCH_STATE_MIB ?? 100);

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'chango-bench-'));
  try {
    const dataDir = join(work, 'data');
    const storeDirs = STORE_NAMES.map((name) => join(dataDir, name));
    const { state, stateMiB, components, seconds } = await seedUntil(dataDir, Buffer.from(newRootSecret()), TARGET_MIB);
    console.log(`seeded ${stateMiB.toFixed(1)} MiB (${components} components, 200 users) in ${seconds.toFixed(1)} s`);

    // Baseline: cp -r of the same folders (state idle, page cache warm for both).
    const cpTarget = join(work, 'cp');
    await mkdir(cpTarget);
    const cpStarted = performance.now();
    execFileSync('cp', ['-r', ...storeDirs, cpTarget]);
    const cpMs = performance.now() - cpStarted;
    await rm(cpTarget, { recursive: true });

    // The writer's own slowest commit with no checkpoint, then during one.
    const writer = startProvisioningWriter(state);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const idleLongestMs = writer.longestCommitMs;
    const idleCommits = writer.committed;
    writer.resetLongest();
    const before = writer.committed;
    const report = await state.checkpoint(join(work, 'checkpoint'));
    const during = writer.committed - before;
    const checkpointLongestMs = writer.longestCommitMs;
    await writer.stop();
    await state.close();
    const checkpointMiB = await sizeMiB(...STORE_NAMES.map((name) => join(work, 'checkpoint', name)));

    const results = {
      stateMiB: Number(stateMiB.toFixed(1)),
      checkpointMiB: Number(checkpointMiB.toFixed(1)),
      records: Object.fromEntries(STORE_NAMES.map((name) => [name, report.stores[name].records])),
      cpMs: Math.round(cpMs),
      checkpointMs: Math.round(report.durationMs),
      checkpointToCpRatio: Number((report.durationMs / cpMs).toFixed(2)),
      writerPauseMs: Number(report.writerPauseMs.toFixed(3)),
      writerCommitsDuringCheckpoint: during,
      writerLongestCommitMsIdle: Number(idleLongestMs.toFixed(1)),
      writerLongestCommitMsDuringCheckpoint: Number(checkpointLongestMs.toFixed(1)),
      writerCommitsPerSecondIdle: Math.round(idleCommits / 2),
    };
    console.log('');
    console.log(`state on disk                    ${results.stateMiB} MiB (checkpoint: ${results.checkpointMiB} MiB)`);
    console.log(`cp -r (baseline, no consistency) ${results.cpMs} ms`);
    console.log(`consistent checkpoint            ${results.checkpointMs} ms   (${results.checkpointToCpRatio}x cp -r)`);
    console.log(`writer pause (gate closed)       ${results.writerPauseMs} ms`);
    console.log(`writer's slowest commit          ${results.writerLongestCommitMsDuringCheckpoint} ms during the checkpoint, ${results.writerLongestCommitMsIdle} ms idle`);
    console.log(`writer commits during checkpoint ${results.writerCommitsDuringCheckpoint}`);
    await mkdir('bench/out', { recursive: true });
    await writeFile('bench/out/checkpoint.json', `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
