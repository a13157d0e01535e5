/**
 * What every case does once its fault has landed: wait (bounded, from the settings) until the
 * faulted job has a final state and no job is active or waiting; run one more backup through a
 * healthy link ("the next backup runs": the service recovered); then the checks (checks.ts).
 * The outcome and the time from the fault to the final state go into the record.
 */
import type { World } from './harness.js';
import { check, type CaseRecord } from './record.js';
import { runChecks } from './checks.js';
import { PENDING_STATES, describeOutcome, isFinal, jobList, jobView, pollUntil, type JobView } from './service.js';
import { POLL_MS, nextBackupBoundMs, settleBoundMs } from './settings.js';

export interface LandedFault {
  /** The job the fault hit (a backup, or a drill for read-back faults). */
  jobId: string;
  /** When it landed (ms since the epoch). */
  at: number;
  /** How long the fault was held (an S3 fault, a Redis outage): counted into the bound. */
  heldMs?: number;
  /** Time the faulted attempt spends on a link slowed on purpose: counted into the bound. */
  extraMs?: number;
}

export async function aftermath(world: World, record: CaseRecord, fault: LandedFault): Promise<void> {
  await settle(world, record, fault);
  await nextBackup(world, record);
  await runChecks(world, record);
  record.notes.push(...world.notes.map((n) => world.redactor.redact(n)));
}

async function settle(world: World, record: CaseRecord, fault: LandedFault): Promise<void> {
  const boundMs = settleBoundMs(fault.heldMs ?? 0, fault.extraMs ?? 0);
  const deadline = Date.now() + boundMs;
  let job: JobView | 'unknown' | undefined;
  let pending: JobView[] = [];
  let finalSeenAt: number | undefined;
  for (;;) {
    await world.supervise();
    job = await jobView(world.stack, fault.jobId);
    const jobs = await jobList(world.stack);
    if (isFinal(job)) finalSeenAt ??= Date.now();
    pending = (jobs ?? []).filter((j) => PENDING_STATES.has(j.state));
    if (isFinal(job) && jobs && pending.length === 0) break;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS * 2));
  }
  record.outcome = world.redactor.redact(describeOutcome(job));
  if (job && job !== 'unknown' && job.finishedAt && isFinal(job)) record.secondsToFinal = round1((Date.parse(job.finishedAt) - fault.at) / 1000);
  else if (finalSeenAt && job !== 'unknown') record.secondsToFinal = round1((finalSeenAt - fault.at) / 1000);

  const settled = isFinal(job) && pending.length === 0;
  check(
    record,
    `faulted job final and queue drained within ${Math.round(boundMs / 1000)} s`,
    settled,
    settled ? record.outcome : `job ${record.outcome}; pending: ${pending.map((j) => `${j.kind} ${j.id} ${j.state}${j.progress ? ` in ${j.progress.phase}` : ''}`).join(', ') || 'none'}`,
  );
  if (job === 'unknown' && !world.redisDataLost) check(record, 'the faulted job is still known', false, `job ${fault.jobId} is gone from the api (404) although Redis kept its data`);
}

async function nextBackup(world: World, record: CaseRecord): Promise<void> {
  world.s3Proxy.set({ mode: 'pass' });
  await world.supervise();
  let detail: string;
  let ok = false;
  try {
    const res = await world.runBackup();
    const body = res.body as { key?: string; durationMs?: number; message?: string; state?: string; alreadyRunning?: boolean };
    ok = res.status === 200 && typeof body.key === 'string' && body.alreadyRunning !== true;
    if (ok) detail = `200 ${body.key} in ${round1((body.durationMs ?? 0) / 1000)} s`;
    else if (res.status === 200) detail = `200, but it answered with the job already running (${body.key ?? ''}): no new backup ran`;
    else if (res.status === 202) detail = `still ${body.state ?? 'running'} after ${Math.round(nextBackupBoundMs() / 1000)} s`;
    else detail = `${res.status} ${body.message ?? JSON.stringify(res.body).slice(0, 300)}`;
  } catch (err) {
    detail = `no answer: ${(err as Error).message}`;
  }
  check(record, 'the next backup runs', ok, world.redactor.redact(detail));
  // A worker that died during that backup is restarted, so the checks still see a service.
  await world.supervise();
  // What follows a backup (its second copy, a drill) is work of its own: the checks look at a drained queue.
  if (ok) await pollUntil(async () => ((await jobList(world.stack))?.some((j) => PENDING_STATES.has(j.state)) === false ? true : undefined), settleBoundMs(), POLL_MS * 2);
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
