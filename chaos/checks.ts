/**
 * The checks every chaos case ends with, once the service has settled and run one more backup:
 * - jobs still active or waiting (must be 0);
 * - leftovers at the destination, read from the real RGW: archives without sidecar, sidecars
 *   without archive, incomplete multipart uploads (must be 0);
 * - one truth: the jobs, `GET /status` and `/metrics` tell the same story, and so does the
 *   destination (a committed archive is some completed job's backup; a completed job's backup is
 *   committed; a failed job is counted and, if newest, named by status);
 * - every committed archive restores (restores.ts);
 * - the work dir is empty.
 * Each returns its findings in words; nothing here retries or waits.
 */
import { readdir } from 'node:fs/promises';
import type { BackupResult, BackupStatus, VerificationRecord } from '@chango/contracts';
import type { World } from './harness.js';
import { PREFIX } from './harness.js';
import { check, type CaseRecord } from './record.js';
import { restoreCommitted } from './restores.js';
import { PENDING_STATES, backupStatus, jobList, runCounters, type JobView } from './service.js';

interface Destination {
  committed: Map<string, string>; // archive key → sidecar text
  withoutSidecar: string[];
  sidecarWithoutArchive: string[];
  incompleteUploads: string[];
  verifyRecords: Map<string, VerificationRecord>;
}

export async function runChecks(world: World, record: CaseRecord): Promise<void> {
  const jobs = await jobList(world.stack);
  const status = await backupStatus(world.stack);
  const counters = await runCounters(world.stack);

  // Jobs still active or waiting.
  if (!jobs) {
    check(record, 'no job active or waiting', false, 'the api did not list the jobs');
  } else {
    const pending = jobs.filter((j) => PENDING_STATES.has(j.state));
    record.activeJobs = pending.length;
    check(record, 'no job active or waiting', pending.length === 0, pending.length === 0 ? '0' : pending.map((j) => `${j.kind} ${j.id} ${j.state}${j.progress ? ` in ${j.progress.phase}` : ''}`).join('; '));
  }

  // Leftovers at the destination.
  const destination = await readDestination(world);
  const leftovers = [
    ...destination.withoutSidecar.map((k) => `archive without sidecar ${k}`),
    ...destination.sidecarWithoutArchive.map((k) => `sidecar without archive ${k}`),
    ...destination.incompleteUploads.map((k) => `incomplete multipart upload ${k}`),
  ];
  record.leftovers = leftovers.length;
  check(record, 'no leftovers at the destination', leftovers.length === 0, leftovers.length === 0 ? '0' : leftovers.join('; '));

  // Every committed archive restores.
  const restored = new Map<string, boolean>();
  for (const [key, sidecar] of destination.committed) {
    const result = await restoreCommitted(world, key, sidecar);
    restored.set(key, result.ok);
    if (!result.ok) record.notes.push(`restore: ${result.detail}`);
  }
  record.restores = { ok: [...restored.values()].filter(Boolean).length, total: restored.size };
  check(
    record,
    'every committed archive restores',
    record.restores.ok === record.restores.total,
    `${record.restores.ok}/${record.restores.total}${record.restores.ok < record.restores.total ? ` (${[...restored].filter(([, ok]) => !ok).map(([k]) => k).join(', ')})` : ''}`,
  );

  // One truth.
  record.contradictions = jobs && status && counters ? contradictions(world, jobs, status, counters, destination, restored) : ['the api did not answer jobs, status or metrics: nothing to compare'];
  check(record, 'one truth (jobs, status, metrics, destination)', record.contradictions.length === 0, record.contradictions.length === 0 ? 'consistent' : record.contradictions.join('; '));

  // The work dir.
  const left = await readdir(world.workDir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : [`(unreadable: ${err.code})`]));
  check(record, 'work dir empty', left.length === 0, left.length === 0 ? 'empty' : `${world.workDir}: ${left.join(', ')}`);

  // A worker no case killed must not have died.
  check(record, 'no unplanned worker exit', world.unexpectedExits.length === 0, world.unexpectedExits.length === 0 ? 'none' : world.unexpectedExits.join('; '));
}

async function readDestination(world: World): Promise<Destination> {
  const names = new Set<string>();
  for await (const item of world.s3.listObjectsV2(world.bucket, PREFIX, true)) if (item.name) names.add(item.name);
  const archives = [...names].filter((n) => n.endsWith('.tar.gz'));
  const committed = new Map<string, string>();
  const withoutSidecar: string[] = [];
  for (const key of archives) {
    if (names.has(`${key}.sha256`)) committed.set(key, (await readObject(world, `${key}.sha256`)).toString('utf8'));
    else withoutSidecar.push(key);
  }
  const sidecarWithoutArchive = [...names].filter((n) => n.endsWith('.tar.gz.sha256') && !names.has(n.slice(0, -'.sha256'.length)));
  const verifyRecords = new Map<string, VerificationRecord>();
  for (const n of [...names].filter((x) => x.endsWith('.tar.gz.verify.json'))) {
    try {
      verifyRecords.set(n.slice(0, -'.verify.json'.length), JSON.parse((await readObject(world, n)).toString('utf8')) as VerificationRecord);
    } catch {
      // an unreadable record is no verdict
    }
  }
  const incompleteUploads: string[] = [];
  for await (const upload of world.s3.listIncompleteUploads(world.bucket, '', true)) incompleteUploads.push(upload.key);
  return { committed, withoutSidecar, sidecarWithoutArchive, incompleteUploads, verifyRecords };
}

async function readObject(world: World, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await world.s3.getObject(world.bucket, key)) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** Which job committed which archive, from the workers' own log lines ("backup committed", "…had committed its backup…"). */
function committedByLog(world: World): Map<string, string> {
  const byKey = new Map<string, string>();
  for (const line of world.workerLogs().split('\n')) {
    if (!line.includes('committed')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; jobId?: string; key?: string };
      if (entry.msg?.includes('committed') && entry.jobId && entry.key) byKey.set(entry.key, entry.jobId);
    } catch {
      // not a JSON log line
    }
  }
  return byKey;
}

function contradictions(
  world: World,
  jobs: JobView[],
  status: BackupStatus,
  counters: Map<string, number>,
  destination: Destination,
  restored: Map<string, boolean>,
): string[] {
  const found: string[] = [];
  const backups = jobs.filter((j) => j.kind === 'backup');
  const drills = jobs.filter((j) => j.kind === 'verify');
  const completed = backups.filter((j) => j.state === 'completed' && j.result && !('skipped' in j.result && j.result.skipped));
  const failed = backups.filter((j) => j.state === 'failed');
  const newest = (list: JobView[]) => [...list].sort((a, b) => Date.parse(b.finishedAt ?? '0') - Date.parse(a.finishedAt ?? '0'))[0];

  // /metrics counts what the jobs say.
  for (const trigger of ['api', 'schedule']) {
    const successes = completed.filter((j) => j.trigger === trigger).length;
    const failures = failed.filter((j) => j.trigger === trigger).length;
    const mSuccess = counters.get(`runs{${trigger},success}`) ?? 0;
    const mFailure = counters.get(`runs{${trigger},failure}`) ?? 0;
    if (mSuccess !== successes) found.push(`metrics count ${mSuccess} ${trigger} successes, the jobs ${successes}`);
    if (mFailure !== failures) found.push(`metrics count ${mFailure} ${trigger} failures, the jobs ${failures} (${failed.filter((j) => j.trigger === trigger).map((j) => j.id).join(', ') || 'none'})`);
  }
  const drillsPassed = drills.filter((j) => j.state === 'completed').length;
  const mDrills = counters.get('verify{success}') ?? 0;
  if (mDrills !== drillsPassed) found.push(`metrics count ${mDrills} passed drills, the jobs ${drillsPassed}`);

  // Status names the newest success and failure.
  const lastOk = newest(completed);
  if ((status.lastSuccess?.jobId ?? null) !== (lastOk?.id ?? null)) found.push(`status.lastSuccess is job ${status.lastSuccess?.jobId ?? 'none'}, the newest completed backup job is ${lastOk?.id ?? 'none'}`);
  const lastBad = newest(failed);
  if ((status.lastFailure?.jobId ?? null) !== (lastBad?.id ?? null)) found.push(`status.lastFailure is job ${status.lastFailure?.jobId ?? 'none'}, the newest failed backup job is ${lastBad?.id ?? 'none'}${lastBad ? ` (${lastBad.failure?.message ?? ''})` : ''}`);

  // A completed job's backup is committed at the destination.
  for (const job of completed) {
    const key = (job.result as BackupResult).key;
    if (!destination.committed.has(key)) found.push(`job ${job.id} completed with ${key}, which is not committed at the destination`);
  }

  // A committed archive is a completed job's backup.
  const resultKeys = new Map(completed.map((j) => [(j.result as BackupResult).key, j.id]));
  const byLog = committedByLog(world);
  for (const key of destination.committed.keys()) {
    if (resultKeys.has(key)) continue;
    const jobId = byLog.get(key);
    const job = jobId ? jobs.find((j) => j.id === jobId) : undefined;
    if (job?.state === 'failed') found.push(`${key} is committed (sidecar present) but its job ${job.id} says failed: ${job.failure?.message ?? ''}`);
    else if (job?.state === 'completed') found.push(`${key} is committed by job ${job.id}, whose result names ${(job.result as BackupResult | null)?.key ?? 'nothing'}`);
    else if (job) found.push(`${key} is committed by job ${job.id}, which is still ${job.state}`);
    else if (world.redisDataLost) world.notes.push(`${key} is committed by a job Redis lost (${jobId ?? 'not in the worker log'}); it must restore like any other`);
    else found.push(`${key} is committed but no completed job names it (${jobId ? `job ${jobId} is unknown to the api` : 'no worker logged committing it'})`);
  }

  // A drill never calls a backup broken that restores.
  if (status.lastVerify && !status.lastVerify.ok && restored.get(status.lastVerify.key) === true) {
    found.push(`status.lastVerify says ${status.lastVerify.key} does not restore (${status.lastVerify.error ?? ''}), but it restores`);
  }
  for (const [key, verdict] of destination.verifyRecords) {
    if (!verdict.ok && restored.get(key) === true) found.push(`${key}.verify.json says it does not restore (${verdict.error ?? ''}), but it restores`);
  }
  return found.map((text) => world.redactor.redact(text));
}
