import { ControlPlaneState, DEFAULT_DATA_DIR, collectStats, loadRootSecret, type StateStats } from '@chango/state';
import { seedState } from '@chango/seed';
import type { Command } from 'commander';
import { wholeNumber } from './options.js';

/** `chango-backup state …`: work directly on a data dir's stores (demo data, checks). */
export function registerStateCommands(program: Command): void {
  const state = program.command('state').description('inspect or fill the control-plane stores of a data dir');

  state
    .command('seed')
    .description('fill the stores with realistic demo records (creates them, and the KMS, when missing)')
    .option('--data-dir <dir>', 'the master data dir', process.env.CHANGO_DATA_DIR || DEFAULT_DATA_DIR)
    .option('--users <n>', 'users to add (each with 1–2 access keys)', wholeNumber('--users'), 20)
    .option('--components <n>', 'component instances to add, spread over clusters and node managers', wholeNumber('--components'), 100)
    .option('--json', 'print the summary as JSON')
    .action(async (options: { dataDir: string; users: number; components: number; json?: boolean }) => {
      const opened = await ControlPlaneState.open({ dataDir: options.dataDir, rootSecret: loadRootSecret(), create: true });
      try {
        const summary = await seedState(opened, { users: options.users, components: options.components });
        if (options.json) console.log(JSON.stringify(summary));
        else console.log(`seeded ${options.dataDir}: ${Object.entries(summary).map(([k, v]) => `${v} ${k}`).join(', ')}`);
      } finally {
        await opened.close();
      }
    });

  state
    .command('stats')
    .description('open the stores with the root secret, decrypt every secret field once, print record counts')
    .option('--data-dir <dir>', 'the master data dir', process.env.CHANGO_DATA_DIR || DEFAULT_DATA_DIR)
    .option('--json', 'print the counts as JSON')
    .action(async (options: { dataDir: string; json?: boolean }) => {
      // Read-only: works beside a running worker and never changes the stores it checks.
      const opened = await ControlPlaneState.open({ dataDir: options.dataDir, rootSecret: loadRootSecret(), readOnly: true });
      try {
        const stats = await collectStats(opened);
        console.log(options.json ? JSON.stringify(stats) : formatStats(options.dataDir, stats));
      } finally {
        await opened.close();
      }
    });
}

function formatStats(dataDir: string, stats: StateStats): string {
  const line = (name: string, counts: object) =>
    `  ${name.padEnd(9)} ${Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(' ')}`;
  return [
    `${dataDir}: opened with the root secret; ${stats.secretsDecrypted} secret fields decrypted`,
    line('kms', stats.kms),
    line('iam', stats.iam),
    line('metadata', stats.metadata),
  ].join('\n');
}
