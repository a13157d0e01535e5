/**
 * The work dir on a filesystem too small for the backup: a 20 MiB tmpfs as CHANGO_WORK_DIR under
 * a ≈ 100 MiB state. `POST /run` must answer an error that names the work dir and the bytes
 * needed, the worker must still be the same process (a full disk must not end it), nothing may
 * reach the destination; then the tmpfs grows to 400 MiB in place and the next backup must
 * succeed. Needs root for mount; otherwise the case reports itself skipped.
 */
import { aftermath } from '../aftermath.js';
import type { CaseContext, ChaosCase } from '../case.js';
import { PREFIX, World, deathWords } from '../harness.js';
import { check } from '../record.js';
import { jobList } from '../service.js';
import { BIG_STATE } from '../settings.js';
import { Tmpfs, isRoot } from '../../testkit/tmpfs.js';

/** What the ≈ 100 MiB state adds to an attempt over the standard one (checkpoint, archive, upload of ≈ 6× the bytes). */
const BIG_STATE_EXTRA_MS = 30_000;

export function smallWorkDirCases(): ChaosCase[] {
  return [
    {
      name: 'small-workdir',
      kind: 'small work dir',
      summary: `work dir on a ${BIG_STATE.tmpfsSmall} tmpfs under a ≈ 100 MiB state, then grown to ${BIG_STATE.tmpfsLarge}`,
      quick: true,
      heavy: true,
      once: true,
      run: smallWorkDirCase,
    },
  ];
}

async function smallWorkDirCase(ctx: CaseContext): Promise<void> {
  const { record } = ctx;
  if (!isRoot()) {
    record.skipped = 'needs root (mount -t tmpfs)';
    return;
  }
  const fs = await Tmpfs.mount(ctx.scope, BIG_STATE.tmpfsSmall);
  const world = await World.create(ctx, { components: BIG_STATE.components, users: BIG_STATE.users, gzipLevel: BIG_STATE.gzipLevel, workDir: fs.dir });
  const worker = world.worker;
  const pid = worker.child.pid;

  const at = Date.now();
  record.fault = `work dir ${fs.dir} on a ${BIG_STATE.tmpfsSmall} tmpfs`;
  const res = await world.runBackup();
  const body = res.body as { jobId?: string; message?: string; error?: string };
  const message = world.redactor.redact(body.message ?? JSON.stringify(res.body).slice(0, 400));
  ctx.log(`POST /run answered ${res.status}: ${message}`);
  const refused = res.status >= 400 && res.status !== 409;
  const namesDir = message.includes(fs.dir);
  const namesBytes = /\d[\d,.]*\s*(bytes|B|KiB|MiB|GiB|kB|MB|GB)\b/.test(message);
  check(
    record,
    'POST /run answers an error naming the work dir and the bytes needed',
    refused && namesDir && namesBytes,
    `${res.status}: ${message}${refused ? '' : ' (not an error)'}${namesDir ? '' : ' (no work dir named)'}${namesBytes ? '' : ' (no byte count)'}`,
  );
  // Give a dying worker the moment it needs to be seen dead.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const alive = world.worker === worker && worker.child.exitCode === null && worker.child.signalCode === null;
  check(record, 'the worker is the same process (same pid)', alive, alive ? `pid ${pid}` : `pid ${pid} exited (code ${worker.child.exitCode}, signal ${worker.child.signalCode}): ${world.redactor.redact(deathWords(worker.stderr))}`);

  const names: string[] = [];
  for await (const item of world.s3.listObjectsV2(world.bucket, PREFIX, true)) if (item.name) names.push(item.name);
  const uploads: string[] = [];
  for await (const upload of world.s3.listIncompleteUploads(world.bucket, '', true)) uploads.push(upload.key);
  check(record, 'nothing at the destination from the failed run', names.length === 0 && uploads.length === 0, names.length + uploads.length === 0 ? 'empty' : [...names, ...uploads.map((u) => `upload ${u}`)].join(', '));

  await fs.resize(BIG_STATE.tmpfsLarge);
  ctx.log(`tmpfs grown to ${BIG_STATE.tmpfsLarge}`);
  // A worker that died of the full disk is restarted now, as systemd would (and noted as an unplanned exit).
  await world.supervise();
  const jobId = body.jobId ?? (await jobList(world.stack))?.find((j) => j.kind === 'backup')?.id;
  if (!jobId) throw new Error('the refused run left no job to follow');
  await aftermath(world, record, { jobId, at, extraMs: BIG_STATE_EXTRA_MS });
}
