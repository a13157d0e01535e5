/**
 * `npm run chaos` — the fault suite (issue 9). Runs each case (`--case NAME[,NAME…]`, a name or
 * a prefix such as `kill9`; `--quick` for one case of each kind) `--repeat N` times (default 2:
 * where a fault lands depends on timing; a case whose fault is a state, the small work dir, runs
 * once), one after another, prints a row per run as it ends,
 * then the table; writes docs/reliability.md; exits 1 if any check failed (2 on bad arguments).
 */
import { parseArgs } from 'node:util';
import { cleanUpRunningCases, runCase } from './case.js';
import { selectCases } from './cases/index.js';
import { failedChecks, verdict, type CaseRecord } from './record.js';
import { textTable, writeReport } from './report.js';
import { RgwHold } from './rgw-hold.js';

function usage(): string {
  return 'usage: node --import tsx chaos/run.ts [--repeat N] [--case NAME[,NAME…]]… [--quick]';
}

async function main(): Promise<number> {
  // Every process testkit starts adds an 'exit' listener (to kill it should we die first): dozens over a run, on purpose.
  process.setMaxListeners(0);
  // Interrupted: the case under way still unmounts its tmpfs and stops its processes before we go.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`chaos: ${signal}: cleaning up the case under way\n`);
      void cleanUpRunningCases().finally(() => process.exit(130));
    });
  }
  let options;
  try {
    options = parseArgs({
      options: { repeat: { type: 'string', default: '2' }, case: { type: 'string', multiple: true, default: [] }, quick: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${usage()}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const repeat = Number(options.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) {
    process.stderr.write(`--repeat must be a whole number ≥ 1\n${usage()}\n`);
    return 2;
  }
  let cases;
  try {
    cases = selectCases(options.case ?? [], options.quick ?? false);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const args = process.argv.slice(2).join(' ');
  const startedAt = new Date();
  const log = (m: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
  log(`chaos: ${cases.length} case(s) × ${repeat}: ${cases.map((c) => c.name).join(', ')}`);

  const records: CaseRecord[] = [];
  const rgw = new RgwHold();
  try {
    for (const def of cases) {
      for (let r = 1; r <= (def.once ? 1 : repeat); r++) {
        log(`[${def.name} #${r}] ${def.summary}`);
        // A cluster that cannot start here fails the case itself (its own startRgw), with the reason.
        await rgw.beforeRun(def.heavy).catch((err: unknown) => log(`RGW: ${(err as Error).message.split('\n')[0]}`));
        const record = await runCase(def, r, log);
        records.push(record);
        const v = verdict(record);
        log(`[${def.name} #${r}] ${v} in ${record.seconds} s — ${record.skipped ? record.skipped : record.outcome}`);
        for (const f of failedChecks(record)) log(`    ✗ ${f.name}: ${f.detail}`);
      }
    }
  } finally {
    await rgw.release();
  }
  const seconds = (Date.now() - startedAt.getTime()) / 1000;
  process.stdout.write(`\n${textTable(records)}\n\n`);
  const path = await writeReport(records, { args, startedAt, seconds });
  log(`report written to ${path}`);
  return records.some((r) => verdict(r) === 'FAIL') ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
