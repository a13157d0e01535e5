import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import type { BackupStatus, CopyTargetStatus } from '@chango/contracts';
import { formatBytes, formatDuration } from '@chango/telemetry';
import { ApiClient, apiAccessFromEnv, EXIT, ExitError } from './api-client.js';
import { watchJob, watchStyle, type WatchedJob } from './job-watch.js';

/** A job that shows no change for this long ends a --wait (overridable with --stall-timeout). */
const DEFAULT_STALL_S = 600;

/**
 * `chango-backup backup …`: drive a running chango-backup through its api
 * (like `velero backup create --wait`), from a shell or a script. The api's
 * address and token come from CHANGO_API_URL and CHANGO_API_TOKEN_FILE — a
 * token is never a flag. Exit statuses (EXIT): 0 done, 1 the job failed,
 * 2 usage or settings, 3 the api unreachable or refusing.
 */
export function registerApiCommands(program: Command): void {
  const backup = program
    .command('backup')
    .description('drive the backup service through its api (CHANGO_API_URL, CHANGO_API_TOKEN_FILE): run, verify, status, jobs, config')
    // Usage errors exit 2 here, so scripts tell them from a failed backup (1) and an api that refused (3).
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.usage));

  backup
    .command('run')
    .description('start a backup; with --wait, follow it to its end (a live bar on a terminal) and print the key and SHA-256')
    .option('--wait', 'wait for the backup to end; exit 0 only when it committed')
    .option('--json', 'print JSON (the job, or the answer) instead of words')
    .option('--stall-timeout <seconds>', `with --wait: give up when the job shows no change for this long (default ${DEFAULT_STALL_S})`, positiveSeconds)
    .action(async (flags: { wait?: boolean; json?: boolean; stallTimeout?: number }) => {
      const api = client();
      const started = await api.call<{ jobId?: string; alreadyRunning?: boolean; statusUrl?: string; error?: string; message?: string }>('POST', '/admin/api/backup/run?wait=false');
      if (started.status === 409 || started.status === 404) throw new ExitError(EXIT.failed, `no backup started: ${started.body.message ?? started.body.error}`);
      if (![200, 202].includes(started.status) || !started.body.jobId) throw new ExitError(EXIT.api, `POST run answered ${started.status}: ${JSON.stringify(started.body).slice(0, 300)}`);
      const { jobId, alreadyRunning } = started.body;
      if (!flags.wait) {
        print(flags.json, started.body, `backup job ${jobId} ${alreadyRunning ? 'was already running' : 'started'}; follow it with: chango-backup backup job ${jobId}`);
        return;
      }
      if (alreadyRunning && !flags.json) process.stderr.write(`a backup was already running: following job ${jobId}\n`);
      const job = await watchJob(api, jobId, watchStyle(Boolean(flags.json)), (flags.stallTimeout ?? DEFAULT_STALL_S) * 1000);
      finish(job, flags.json, describeBackup);
    });

  backup
    .command('verify')
    .description('start a restore drill of a backup (the newest without --key); with --wait, follow it to its verdict')
    .option('--key <key>', 'the backup to drill (see `chango-backup list`)')
    .option('--from <place>', 'where to download it: primary (default) or copy (the second copy)')
    .option('--wait', 'wait for the verdict; exit 0 only when the backup restores')
    .option('--json', 'print JSON instead of words')
    .option('--stall-timeout <seconds>', `with --wait: give up when the job shows no change for this long (default ${DEFAULT_STALL_S})`, positiveSeconds)
    .action(async (flags: { key?: string; from?: string; wait?: boolean; json?: boolean; stallTimeout?: number }) => {
      const api = client();
      const body = { ...(flags.key ? { key: flags.key } : {}), ...(flags.from ? { from: flags.from } : {}) };
      const asked = await api.call<{ jobId?: string; error?: string; message?: string; fields?: { field: string; message: string }[] }>('POST', '/admin/api/backup/verify', body);
      if (asked.status === 400) throw new ExitError(EXIT.usage, `the api refused the drill: ${(asked.body.fields ?? []).map((f) => `--${f.field} ${f.message}`).join('; ') || asked.body.message}`);
      if (asked.status === 409) throw new ExitError(EXIT.failed, `no drill started: ${asked.body.message ?? ''}`);
      if (asked.status !== 202 || !asked.body.jobId) throw new ExitError(EXIT.api, `POST verify answered ${asked.status}: ${JSON.stringify(asked.body).slice(0, 300)}`);
      if (!flags.wait) {
        print(flags.json, asked.body, `restore drill job ${asked.body.jobId} started; follow it with: chango-backup backup job ${asked.body.jobId}`);
        return;
      }
      const job = await watchJob(api, asked.body.jobId, watchStyle(Boolean(flags.json)), (flags.stallTimeout ?? DEFAULT_STALL_S) * 1000);
      finish(job, flags.json, describeDrill);
    });

  backup
    .command('status')
    .description('who leads, the schedule, the last success, failure, drill and copies, and the backups at the destination')
    .option('--json', 'print the status as JSON')
    .action(async (flags: { json?: boolean }) => {
      const status = await get<BackupStatus>('/admin/api/backup/status');
      print(flags.json, status, describeStatus(status));
    });

  backup
    .command('jobs')
    .description('the newest jobs (backups, drills, copies), newest first')
    .option('--limit <n>', 'at most this many (default 20, at most 500)', positiveCount)
    .option('--json', 'print JSON')
    .action(async (flags: { limit?: number; json?: boolean }) => {
      const answer = await get<{ jobs: WatchedJob[] }>(`/admin/api/backup/jobs?limit=${flags.limit ?? 20}`);
      print(flags.json, answer, answer.jobs.map(jobLine).join('\n') || 'no jobs');
    });

  backup
    .command('job <id>')
    .description('one job: its state, progress, result or failure')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }) => {
      const answer = await client().call<WatchedJob & { error?: string; message?: string }>('GET', `/admin/api/backup/jobs/${encodeURIComponent(id)}`);
      if (answer.status === 404) throw new ExitError(EXIT.failed, `no job ${id}: ${answer.body.message ?? 'unknown'}`);
      if (answer.status === 400) throw new ExitError(EXIT.usage, `${id} is not a job id`);
      if (answer.status !== 200) throw new ExitError(EXIT.api, `GET job answered ${answer.status}`);
      print(flags.json, answer.body, [jobLine(answer.body), answer.body.failure ? `  failure: ${answer.body.failure.message}` : ''].filter(Boolean).join('\n'));
    });

  const config = backup.command('config').description('the backup destination (S3, schedule, retention, copy, encryption)');
  config
    .command('get')
    .description('print the destination as JSON (secret keys are never shown: secretKeySet says one is stored)')
    .action(async () => {
      console.log(JSON.stringify(await get('/admin/api/backup/config'), null, 2));
    });
  config
    .command('set')
    .description('save the destination from a JSON file (or - for stdin); secret keys from files of their own, never flags')
    .requiredOption('--file <file>', 'the JSON body of PUT /admin/api/backup/config, or - for stdin')
    .option('--secret-key-file <file>', "a file holding the S3 secret key (else the body's secretKey, else the stored one is kept)")
    .option('--copy-secret-key-file <file>', "a file holding the S3 copy target's secret key")
    .action(async (flags: { file: string; secretKeyFile?: string; copySecretKeyFile?: string }) => {
      const body = readJsonBody(flags.file);
      if (flags.secretKeyFile) body.secretKey = readSecret(flags.secretKeyFile, '--secret-key-file');
      if (flags.copySecretKeyFile) {
        const copy = body.copy as Record<string, unknown> | null | undefined;
        if (!copy || copy.type !== 's3') throw new ExitError(EXIT.usage, '--copy-secret-key-file needs an S3 copy target ("copy": {"type": "s3", …}) in the body');
        copy.secretKey = readSecret(flags.copySecretKeyFile, '--copy-secret-key-file');
      }
      const saved = await client().call<{ fields?: { field: string; message: string }[]; message?: string }>('PUT', '/admin/api/backup/config', body);
      if (saved.status === 400) throw new ExitError(EXIT.usage, `the api refused the destination: ${(saved.body.fields ?? []).map((f) => `${f.field} ${f.message}`).join('; ') || saved.body.message}`);
      if (saved.status !== 200) throw new ExitError(EXIT.api, `PUT config answered ${saved.status}: ${saved.body.message ?? JSON.stringify(saved.body).slice(0, 300)}`);
      console.log(JSON.stringify(saved.body, null, 2));
    });
}

function client(): ApiClient {
  return new ApiClient(apiAccessFromEnv());
}

async function get<T>(path: string): Promise<T> {
  const answer = await client().call<T>('GET', path);
  if (answer.status === 404) throw new ExitError(EXIT.failed, `${path}: ${(answer.body as { message?: string }).message ?? 'not found'}`);
  if (answer.status !== 200) throw new ExitError(EXIT.api, `GET ${path} answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`);
  return answer.body;
}

/** Ends a waited job: its result in words (or JSON) on stdout and exit 0, or its failure on stderr and exit 1. */
function finish(job: WatchedJob, json: boolean | undefined, describe: (result: Record<string, unknown>, job: WatchedJob) => string): void {
  if (job.state === 'failed') {
    if (json) console.log(JSON.stringify(job, null, 2));
    throw new ExitError(EXIT.failed, `${job.kind} job ${job.id} failed: ${job.failure?.message ?? 'no reason given'}`);
  }
  print(json, job, describe(job.result ?? {}, job));
}

function describeBackup(result: Record<string, unknown>, job: WatchedJob): string {
  if (result.skipped) return `no new backup: ${String(result.reason)}`;
  return [
    `backup committed: ${String(result.key)}`,
    `  sha256 ${String(result.sha256)}`,
    `  ${formatBytes(Number(result.size))} in ${formatDuration(Number(result.durationMs))} (job ${job.id})${result.encrypted ? '; encrypted to offline recipients' : ''}`,
  ].join('\n');
}

function describeDrill(result: Record<string, unknown>): string {
  const records = result.records as { kms: number; iam: number; metadata: number } | null;
  const what = result.kind === 'checksum' ? 'its stored bytes match the sidecar (encrypted: the worker holds no identity to restore it)' : 'it restores';
  return [`drilled ${String(result.key)} (from the ${String(result.source ?? 'primary')}): ${what}`, records ? `  records kms=${records.kms} iam=${records.iam} metadata=${records.metadata}` : ''].filter(Boolean).join('\n');
}

function describeStatus(s: BackupStatus): string {
  const when = (iso: string | null | undefined) => iso ?? 'never';
  return [
    `leader      ${s.leader ? `${s.leader.nodeId} (epoch ${s.leader.epoch}, since ${s.leader.since})` : 'NONE: no worker can run backups'}`,
    `workers     ${s.workers.join(', ') || 'none'}`,
    `schedule    ${s.schedule ? `${s.schedule.cron} (${s.schedule.timezone}), next ${when(s.schedule.nextRunAt)}` : 'none'}`,
    `last ok     ${s.lastSuccess ? `${s.lastSuccess.finishedAt} ${s.lastSuccess.key ?? ''}` : 'never'}`,
    `last failed ${s.lastFailure ? `${s.lastFailure.finishedAt}: ${s.lastFailure.error ?? ''}` : 'never'}`,
    `last drill  ${s.lastVerify ? `${s.lastVerify.verifiedAt} ${s.lastVerify.ok ? (s.lastVerify.kind === 'checksum' ? 'bytes checked' : 'restored') : `FAILED: ${s.lastVerify.error ?? ''}`} ${s.lastVerify.key}` : 'never'}`,
    ...s.lastCopy.map((c: CopyTargetStatus) => `copy        ${c.destination}: ${copyWords(c)}`),
    `destination ${s.destination ? `${s.destination.committed} backups, ${formatBytes(s.destination.bytes)} (counted ${s.destination.countedAt}); retention: ${s.destination.retention.words}` : 'not counted yet'}`,
  ].join('\n');
}

function copyWords(c: CopyTargetStatus): string {
  const ok = c.lastSuccess;
  const bad = c.lastFailure;
  if (bad && (!ok || bad.finishedAt > ok.finishedAt)) return `FAILING since ${bad.finishedAt}: ${bad.error ?? ''}`;
  return ok ? `last copy ${ok.finishedAt} ${ok.copyKey ?? ''}` : 'none yet';
}

function jobLine(job: WatchedJob): string {
  const result = job.result ?? {};
  const detail = job.state === 'failed' ? job.failure?.message ?? '' : result.skipped ? `skipped: ${String(result.reason)}` : String(result.key ?? job.progress?.phase ?? '');
  return `${job.id.padEnd(38)} ${job.kind.padEnd(7)} ${job.state.padEnd(10)} ${detail}`;
}

function print(json: boolean | undefined, value: unknown, words: string): void {
  console.log(json ? JSON.stringify(value, null, 2) : words);
}

function readJsonBody(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new ExitError(EXIT.usage, `--file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('not a JSON object');
    return body as Record<string, unknown>;
  } catch (err) {
    throw new ExitError(EXIT.usage, `--file ${file} is not a JSON object (${(err as Error).message.slice(0, 200)})`);
  }
}

function readSecret(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ExitError(EXIT.usage, `${flag} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

function positiveCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 500) throw new InvalidArgumentError('must be a whole number from 1 to 500');
  return n;
}

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of seconds, at least 1');
  return n;
}
