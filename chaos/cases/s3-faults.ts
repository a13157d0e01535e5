/**
 * The destination misbehaving: the fault proxy in front of RGW cut (RST), blackholed, slowed or
 * stalled, held for FAULT_HOLD_MS, then back to pass. Two places:
 * - mid-upload: one 5 MiB part acknowledged and the next in flight;
 * - mid-read-back: a restore drill (`POST /admin/api/backup/verify`) of a backup made just
 *   before, 1 MiB into its download. (The commit's own read-back is a HEAD, milliseconds long:
 *   the drill is where an archive is really read back.)
 * A stall mid-upload stops client→server bytes (the part body never completes); mid-read-back it
 * stops server→client bytes (the download stops), each after AIM.stallBytes more.
 */
import type { FaultMode } from '../../testkit/fault-proxy.js';
import { describeMode } from '../../testkit/fault-proxy.js';
import { aftermath } from '../aftermath.js';
import type { CaseContext, ChaosCase } from '../case.js';
import { World } from '../harness.js';
import { check } from '../record.js';
import { AIM, archiveTransferMs, FAULT_HOLD_MS, phaseBoundMs, RATES, STATE } from '../settings.js';
import { PhaseWatcher, afterBytes, within } from '../triggers.js';

type S3Fault = 'cut' | 'blackhole' | 'slow' | 'stall';
type Where = 'upload' | 'readback';


export function s3FaultCases(): ChaosCase[] {
  const faults: S3Fault[] = ['cut', 'blackhole', 'slow', 'stall'];
  return (['upload', 'readback'] as Where[]).flatMap((where) =>
    faults.map(
      (fault): ChaosCase => ({
        name: `s3-${fault}-${where}`,
        kind: 'S3 fault',
        summary: `S3 ${fault} for ${FAULT_HOLD_MS / 1000} s ${where === 'upload' ? 'mid-upload' : 'mid-read-back (restore drill)'}, then pass`,
        quick: fault === 'blackhole' && where === 'upload',
        run: (ctx) => s3Case(ctx, fault, where),
      }),
    ),
  );
}

function modeFor(fault: S3Fault, where: Where): FaultMode {
  switch (fault) {
    case 'cut':
      return { mode: 'cut' };
    case 'blackhole':
      return { mode: 'blackhole' };
    case 'slow':
      return { mode: 'slow', bytesPerSecond: RATES.slowFault };
    case 'stall':
      return { mode: 'stall-after', bytes: AIM.stallBytes, direction: where === 'upload' ? 'up' : 'down' };
  }
}

async function s3Case(ctx: CaseContext, fault: S3Fault, where: Where): Promise<void> {
  const { record } = ctx;
  const world = await World.create(ctx, { components: STATE.components, users: STATE.users });
  const watcher = PhaseWatcher.start(world.redisTap, ctx.scope, 'the S3 cases');
  const phase = where === 'upload' ? 'upload' : 'verify';
  const rate = where === 'upload' ? RATES.upload : RATES.readBack;
  const extraMs = archiveTransferMs(rate);

  if (where === 'readback') {
    const made = await world.runBackup();
    if (made.status !== 200) throw new Error(`the backup to drill failed: ${made.status} ${world.redactor.redact(JSON.stringify(made.body)).slice(0, 300)}`);
  }
  world.s3Proxy.set({ mode: 'slow', bytesPerSecond: rate });
  const reached = watcher.when(phase);
  const jobId = where === 'upload' ? await world.startBackup() : await startDrill(world);
  ctx.log(`${where === 'upload' ? 'backup' : 'drill'} ${jobId} started; aiming S3 ${fault} at ${phase}`);
  await within(reached, phaseBoundMs(extraMs), `the job reaching ${phase}`);
  const bytes = where === 'upload' ? AIM.uploadBytes : AIM.readBackBytes;
  const direction = where === 'upload' ? 'up' : 'down';
  if (!(await afterBytes(world.s3Proxy, direction, bytes, phaseBoundMs(extraMs)))) throw new Error(`${Math.round(bytes / 1024 / 1024)} MiB never went ${direction} through the proxy`);

  const mode = modeFor(fault, where);
  const landedIn = watcher.current;
  const at = Date.now();
  world.s3Proxy.set(mode);
  record.fault = `S3 ${describeMode(mode)} ${Math.round(bytes / 1024 / 1024)} MiB into the ${where === 'upload' ? 'upload' : 'drill download'}, held ${FAULT_HOLD_MS / 1000} s`;
  check(record, `fault landed in ${phase}`, landedIn === phase, `last reported ${landedIn ?? 'nothing'}`);
  await new Promise((resolve) => setTimeout(resolve, FAULT_HOLD_MS));
  const during = world.s3Proxy.stats();
  world.s3Proxy.set({ mode: 'pass' });
  record.notes.push(`proxy during the fault: ${during.connections.reset} connections reset, ${during.up.swallowed + during.down.swallowed} bytes swallowed`);
  ctx.log('fault lifted');
  await aftermath(world, record, { jobId, at, heldMs: FAULT_HOLD_MS, extraMs });
}

async function startDrill(world: World): Promise<string> {
  const res = await world.stack.request<{ jobId: string }>('POST', '/admin/api/backup/verify', { timeoutMs: 60_000 });
  if (res.status !== 202) throw new Error(`POST /admin/api/backup/verify answered ${res.status}: ${world.redactor.redact(JSON.stringify(res.body)).slice(0, 300)}`);
  return res.body.jobId;
}
