/**
 * The worker killed (SIGKILL) or asked to stop (SIGTERM) in each phase of a backup, then started
 * again as systemd would. Where each fault lands, exactly:
 * - checkpoint: AIM.afterPhaseStartMs after the worker reported the phase (it lasts ≈ 0.2 s with
 *   this state), so the checkpoint is half-made;
 * - upload (the archive is made as it is uploaded: no phase of its own): one 5 MiB part
 *   acknowledged and the next in flight (the S3 link slowed to aim);
 * - commit: as S3's answer to the sidecar PUT comes back — the commit marker is stored, the
 *   worker never hears it (the most dangerous moment: a backup that is whole, in a job that is not);
 * - done: as the worker reports `done`, before the job is completed in Redis.
 * The phase the worker last reported when the signal went out is checked: a fault elsewhere is a
 * harness error, not a verdict on the service.
 */
import { aftermath } from '../aftermath.js';
import type { CaseContext, ChaosCase } from '../case.js';
import { World } from '../harness.js';
import { check } from '../record.js';
import { jobView } from '../service.js';
import { AIM, archiveTransferMs, phaseBoundMs, RATES, SIGTERM_EXIT_MS, STATE } from '../settings.js';
import { PhaseWatcher, afterBytes, onSidecarStored, within, type Phase } from '../triggers.js';

export const BACKUP_PHASES = ['checkpoint', 'upload', 'commit', 'done'] as const;
type BackupPhaseName = (typeof BACKUP_PHASES)[number];

/** Rough archive size of STATE (≈ 15 MiB at gzip 9), for the time the slowed link adds to an attempt. */

export function workerSignalCases(): ChaosCase[] {
  return BACKUP_PHASES.flatMap((phase): ChaosCase[] => [
    {
      name: `kill9-${phase}`,
      kind: 'kill -9',
      summary: `SIGKILL of the worker in ${phase}, then a new worker`,
      quick: phase === 'upload',
      run: (ctx) => signalCase(ctx, phase, 'SIGKILL'),
    },
    {
      name: `sigterm-${phase}`,
      kind: 'SIGTERM',
      summary: `SIGTERM to the worker in ${phase}: gone within ${SIGTERM_EXIT_MS / 1000} s, then a new worker`,
      quick: phase === 'upload',
      run: (ctx) => signalCase(ctx, phase, 'SIGTERM'),
    },
  ]);
}

async function signalCase(ctx: CaseContext, phase: BackupPhaseName, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const { record } = ctx;
  const world = await World.create(ctx, { components: STATE.components, users: STATE.users });
  const watcher = PhaseWatcher.start(world.redisTap, ctx.scope, 'the worker-signal cases');

  // Aim: the signal goes out synchronously at the chosen point; `landedIn` is what the worker last reported then.
  let landedIn: Phase | undefined;
  let at = 0;
  let where = '';
  /** commit: the archive whose sidecar was stored as the signal went out. */
  let committedKey: string | undefined;
  const worker = world.worker;
  const fire = () => {
    landedIn = watcher.current;
    at = Date.now();
    world.expectExit();
    worker.child.kill(signal);
  };
  const slowed = phase === 'upload';
  if (slowed) world.s3Proxy.set({ mode: 'slow', bytesPerSecond: RATES.upload });
  const extraMs = slowed ? archiveTransferMs(RATES.upload) : 0;
  const aimed = (async () => {
    if (phase === 'checkpoint') {
      await watcher.when(phase);
      await new Promise((resolve) => setTimeout(resolve, AIM.afterPhaseStartMs));
      where = `${AIM.afterPhaseStartMs} ms after the worker reported ${phase}`;
      fire();
    } else if (phase === 'upload') {
      await watcher.when('upload');
      if (!(await afterBytes(world.s3Proxy, 'up', AIM.uploadBytes, phaseBoundMs(extraMs)))) throw new Error('the upload never got one part through');
      where = `${Math.round(AIM.uploadBytes / 1024 / 1024)} MiB into the upload`;
      fire();
    } else if (phase === 'commit') {
      committedKey = await onSidecarStored(world.s3Proxy, fire);
      where = 'as S3 answered the sidecar PUT (commit marker stored, not yet heard)';
    } else {
      await watcher.when('done', fire);
      where = 'as the worker reported done (job not yet completed)';
    }
  })();
  aimed.catch(() => undefined); // awaited below; this only keeps an early failure from counting as unhandled
  const jobId = await world.startBackup();
  ctx.log(`backup ${jobId} started; aiming ${signal} at ${phase}`);
  await within(aimed, phaseBoundMs(extraMs), `the backup reaching ${phase}`);
  // The slowed link was for aiming only.
  world.s3Proxy.set({ mode: 'pass' });
  record.fault = `${signal} ${where}`;

  // Where it landed: the last phase the worker reported before the signal (and, for a kill, what the api still shows).
  const viewed = signal === 'SIGKILL' ? await afterExit(world, jobId) : undefined;
  const landedOk = landedIn === phase && (viewed === undefined || viewed === phase);
  check(record, `fault landed in ${phase}`, landedOk, `last reported ${landedIn ?? 'nothing'}${viewed !== undefined ? `; the api shows ${viewed}` : ''}`);

  if (signal === 'SIGTERM') {
    // The bound runs from the signal, not from when we got here.
    const left = Math.max(0, at + SIGTERM_EXIT_MS - Date.now());
    let timer: NodeJS.Timeout | undefined;
    const exited = await Promise.race([worker.exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), left)))]);
    clearTimeout(timer);
    const seconds = Math.round((Date.now() - at) / 100) / 10;
    if (!exited) {
      worker.child.kill('SIGKILL');
      await worker.exited;
    }
    record.notes.push(exited ? `exited ${seconds} s after SIGTERM (code ${worker.child.exitCode})` : `still running ${SIGTERM_EXIT_MS / 1000} s after SIGTERM: killed`);
    check(record, `exits within ${SIGTERM_EXIT_MS / 1000} s of SIGTERM`, exited, exited ? `${seconds} s, code ${worker.child.exitCode}` : `still running after ${SIGTERM_EXIT_MS / 1000} s`);
  } else {
    await worker.exited;
  }
  await world.restartWorker();
  ctx.log(`worker restarted; the fault landed in ${landedIn}`);
  await aftermath(world, record, { jobId, at });
  if (committedKey) record.notes.push(await keptOrReplaced(world, jobId, committedKey));
}

/** Whether the job ended as the backup the signalled attempt had committed, or made another (no check: both are consistent). */
async function keptOrReplaced(world: World, jobId: string, committedKey: string): Promise<string> {
  const job = await jobView(world.stack, jobId);
  const key = job && job !== 'unknown' ? (job.result as { key?: string } | null)?.key : undefined;
  if (key === committedKey) return `the job completed as the archive the signalled attempt had committed (${committedKey})`;
  return `the signalled attempt had committed ${committedKey}; the job ended ${key ? `as another archive, ${key}` : job && job !== 'unknown' ? job.state : 'unknown'}`;
}

/** The phase the api shows for the job once the killed worker is gone (what it left in Redis). */
async function afterExit(world: World, jobId: string): Promise<string> {
  await world.worker.exited;
  const job = await jobView(world.stack, jobId);
  if (job === 'unknown') return 'unknown job';
  if (!job) return 'no answer';
  return job.state === 'active' ? (job.progress?.phase ?? 'no phase') : `${job.state}`;
}
