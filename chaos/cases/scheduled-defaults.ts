/**
 * Issue 9's first acceptance, as an operator would meet it: the shipped defaults for every S3
 * bound and for retries (no CHANGO_S3_* or CHANGO_BACKUP_* override), a schedule, and the
 * destination going silent mid-upload (blackhole: connections stay open, nothing answers — a
 * dead NAT entry, a stuck load balancer). The proxy stays silent until the job is final: the
 * job must fail in words within the documented bound (every attempt ended by the 30 s
 * no-progress bound, the backoffs between them); then the link passes again and the next
 * scheduled tick must make a backup. The other cases shorten the bounds so they end quickly;
 * this one checks the numbers the README promises.
 */
import { DEFAULT_S3_TIMEOUTS } from '@chango/s3';
import type { CaseContext, ChaosCase } from '../case.js';
import { PREFIX, World } from '../harness.js';
import { check } from '../record.js';
import { runChecks } from '../checks.js';
import { PENDING_STATES, describeOutcome, isFinal, jobList, jobView, pollUntil, type JobView } from '../service.js';
import { AIM, archiveTransferMs, backoffTotalMs, BACKUP_ESTIMATE_MS, DEFAULT_RETRY, MARGIN, phaseBoundMs, POLL_MS, RATES, STATE } from '../settings.js';
import { PhaseWatcher, afterBytes, within } from '../triggers.js';

/** Ticks every 20 s: one is always due soon after the faulted job fails. */
const SCHEDULE = '*/20 * * * * *';
const TICK_MS = 20_000;

/** Every attempt ends at the idle bound after its work; the backoffs double. × MARGIN. */
export function defaultsFailureBoundMs(extraMs = 0): number {
  return MARGIN * (DEFAULT_RETRY.attempts * (BACKUP_ESTIMATE_MS + DEFAULT_S3_TIMEOUTS.idleMs) + backoffTotalMs(DEFAULT_RETRY) + extraMs);
}

export function scheduledDefaultsCases(): ChaosCase[] {
  return [
    {
      name: 's3-blackhole-scheduled-defaults',
      kind: 'S3 fault',
      summary: 'default S3 bounds and retries, a schedule every 20 s: S3 blackholed mid-upload until the job is final, then pass; the next tick must back up',
      once: true,
      run: scheduledDefaultsCase,
    },
  ];
}

async function scheduledDefaultsCase(ctx: CaseContext): Promise<void> {
  const { record } = ctx;
  const world = await World.create(ctx, { components: STATE.components, users: STATE.users, defaultBounds: true });
  const watcher = PhaseWatcher.start(world.redisTap, ctx.scope, 'the scheduled-defaults case');
  const extraMs = archiveTransferMs(RATES.upload);

  world.s3Proxy.set({ mode: 'slow', bytesPerSecond: RATES.upload });
  const reached = watcher.when('upload');
  await setSchedule(world, SCHEDULE);
  ctx.log(`schedule ${SCHEDULE} set; aiming S3 blackhole at the first tick's upload`);
  await within(reached, phaseBoundMs(extraMs + TICK_MS), 'a scheduled backup reaching upload');
  if (!(await afterBytes(world.s3Proxy, 'up', AIM.uploadBytes, phaseBoundMs(extraMs)))) throw new Error('the upload never got going through the proxy');
  const faulted = (await jobList(world.stack))?.find((j) => j.kind === 'backup' && j.state === 'active');
  if (!faulted) throw new Error('no active backup job while its upload was under way');

  const landedIn = watcher.current;
  const at = Date.now();
  world.s3Proxy.set({ mode: 'blackhole' });
  record.fault = `S3 blackholed ${Math.round(AIM.uploadBytes / 1024 / 1024)} MiB into the upload of scheduled job ${faulted.id}, held until the job was final`;
  check(record, 'fault landed in upload', landedIn === 'upload', `last reported ${landedIn ?? 'nothing'}`);
  check(record, 'the faulted backup is a scheduled one', faulted.trigger === 'schedule', `trigger ${faulted.trigger}`);

  // The link stays silent until the job is final: only the service's own bounds can end it.
  const boundMs = defaultsFailureBoundMs(extraMs);
  ctx.log(`S3 blackholed in the upload of ${faulted.id}; waiting up to ${Math.round(boundMs / 1000)} s for it to end`);
  const final = await pollUntil(async () => {
    const job = await jobView(world.stack, faulted.id);
    return isFinal(job) ? (job as JobView) : undefined;
  }, boundMs, POLL_MS * 2);
  world.s3Proxy.set({ mode: 'pass' });
  const failedAt = final?.finishedAt ? Date.parse(final.finishedAt) : Date.now();
  record.outcome = world.redactor.redact(describeOutcome(final));
  record.secondsToFinal = final ? Math.round((failedAt - at) / 100) / 10 : null;
  const message = final?.failure?.message ?? '';
  ctx.log(`faulted job ${record.outcome.slice(0, 200)} after ${record.secondsToFinal ?? '?'} s; link passes again`);
  check(record, `the job is final within ${Math.round(boundMs / 1000)} s (documented: about 2 min)`, final !== undefined, record.outcome);
  check(
    record,
    'its message names the endpoint, the operation and the bound, and promises no retry',
    final?.state === 'failed' && message.includes(world.s3Proxy.url) && /moved no byte for 30 s while \w+/.test(message) && message.includes('CHANGO_S3_IDLE_TIMEOUT_MS') && /no attempt left/.test(message) && !/will be retried|next one in/.test(message),
    world.redactor.redact(message.slice(0, 400)),
  );
  check(record, `every attempt was made (${DEFAULT_RETRY.attempts})`, final?.attemptsMade === DEFAULT_RETRY.attempts, `${final?.attemptsMade ?? '?'} made`);

  // The next scheduled tick, through the healthy link, makes a backup.
  const nextBoundMs = MARGIN * (TICK_MS + BACKUP_ESTIMATE_MS + DEFAULT_RETRY.backoffMs + BACKUP_ESTIMATE_MS);
  const next = await pollUntil(async () => {
    const jobs = await jobList(world.stack);
    return jobs?.find((j) => j.trigger === 'schedule' && j.id !== faulted.id && j.state === 'completed' && j.result && 'key' in j.result && Date.parse(j.startedAt ?? '0') >= failedAt - 1_000);
  }, nextBoundMs, POLL_MS * 2);
  const nextKey = next?.result && 'key' in next.result ? next.result.key : undefined;
  check(record, `the next scheduled tick makes a backup within ${Math.round(nextBoundMs / 1000)} s`, next !== undefined, next ? `job ${next.id}: ${nextKey ?? ''}, ${Math.round((Date.parse(next.finishedAt ?? '0') - failedAt) / 100) / 10} s after the failure` : 'none completed');
  if (next) record.notes.push(`next scheduled backup ${nextKey ?? ''} finished ${Math.round((Date.parse(next.finishedAt ?? '0') - failedAt) / 100) / 10} s after the faulted job failed`);

  // No more ticks: the checks want a queue with nothing waiting.
  await setSchedule(world, null);
  const drained = await pollUntil(async () => {
    const jobs = await jobList(world.stack);
    return jobs && !jobs.some((j) => PENDING_STATES.has(j.state)) ? true : undefined;
  }, MARGIN * (BACKUP_ESTIMATE_MS + TICK_MS), POLL_MS * 2);
  if (!drained) ctx.log('the queue did not drain after the schedule was removed');
  await runChecks(world, record);
  record.notes.push(...world.notes.map((n) => world.redactor.redact(n)));
}

async function setSchedule(world: World, schedule: string | null): Promise<void> {
  const res = await world.stack.request('PUT', '/admin/api/backup/config', {
    body: { endpoint: world.s3Proxy.url, region: world.rgw.region, bucket: world.bucket, prefix: PREFIX, accessKey: world.rgw.accessKey, secretKey: world.rgw.secretKey, schedule },
    timeoutMs: 60_000,
  });
  if (res.status !== 200) throw new Error(`PUT /admin/api/backup/config (schedule ${schedule ?? 'none'}) answered ${res.status}: ${world.redactor.redact(JSON.stringify(res.body)).slice(0, 300)}`);
}
