/**
 * The worker killed (SIGKILL) half-way through the second copy of a backup — one 5 MiB part of
 * the copy's multipart upload acknowledged, the next in flight — then started again. The copy job
 * must be taken over, remove what the killed attempt left at the copy target (an incomplete
 * multipart upload of the same key), and commit a copy byte for byte equal to the backup; the
 * primary backup is never touched by any of it.
 */
import { createTestBucket } from '../../testkit/local-rgw.js';
import { aftermath } from '../aftermath.js';
import type { CaseContext, ChaosCase } from '../case.js';
import { PREFIX, World } from '../harness.js';
import { check, type CaseRecord } from '../record.js';
import { backupStatus, jobList, pollUntil } from '../service.js';
import { AIM, archiveTransferMs, phaseBoundMs, POLL_MS, RATES, STATE } from '../settings.js';
import { PhaseWatcher, afterBytes, within, type Phase } from '../triggers.js';

const COPY_PREFIX = 'copy/';

export function secondCopyCases(): ChaosCase[] {
  return [
    {
      name: 'kill9-copy',
      kind: 'kill -9',
      summary: 'SIGKILL of the worker half-way through the second copy (an S3 copy target), then a new worker',
      run: (ctx) => killDuringCopy(ctx),
    },
  ];
}

async function killDuringCopy(ctx: CaseContext): Promise<void> {
  const { record } = ctx;
  const world = await World.create(ctx, { components: STATE.components, users: STATE.users });
  const copyBucket = await createTestBucket(world.rgw);
  const label = `${world.s3Proxy.url}/${copyBucket}/${COPY_PREFIX}`;
  const saved = await world.stack.request('PUT', '/admin/api/backup/config', {
    body: {
      endpoint: world.s3Proxy.url, region: world.rgw.region, bucket: world.bucket, prefix: PREFIX, accessKey: world.rgw.accessKey,
      copy: { type: 's3', endpoint: world.s3Proxy.url, region: world.rgw.region, bucket: copyBucket, prefix: COPY_PREFIX, accessKey: world.rgw.accessKey, secretKey: world.rgw.secretKey },
    },
    timeoutMs: 60_000,
  });
  if (saved.status !== 200) throw new Error(`PUT /admin/api/backup/config with a copy answered ${saved.status}`);
  const watcher = PhaseWatcher.start(world.redisTap, ctx.scope, 'the second-copy case');

  let landedIn: Phase | undefined;
  let at = 0;
  const extraMs = archiveTransferMs(RATES.upload);
  const aimed = (async () => {
    // The backup itself runs at full speed; its copy, on the slowed link, is where the kill lands.
    await watcher.when('copy', () => world.s3Proxy.set({ mode: 'slow', bytesPerSecond: RATES.upload }));
    if (!(await afterBytes(world.s3Proxy, 'up', AIM.uploadBytes, phaseBoundMs(extraMs)))) throw new Error("the copy's upload never got one part through");
    landedIn = watcher.current;
    at = Date.now();
    world.expectExit();
    world.worker.child.kill('SIGKILL');
  })();
  aimed.catch(() => undefined); // awaited below
  const backupJobId = await world.startBackup();
  ctx.log(`backup ${backupJobId} started; aiming SIGKILL at its copy`);
  await within(aimed, 2 * phaseBoundMs(extraMs), 'the copy reaching mid-upload');
  world.s3Proxy.set({ mode: 'pass' });
  record.fault = `SIGKILL ${Math.round(AIM.uploadBytes / 1024 / 1024)} MiB into the copy's upload`;
  check(record, 'fault landed in copy', landedIn === 'copy', `last reported ${landedIn ?? 'nothing'}`);

  await world.worker.exited;
  await world.restartWorker();
  const copyJob = (await jobList(world.stack))?.find((j) => j.kind === 'copy');
  if (!copyJob) throw new Error('no copy job is listed after the kill');
  await aftermath(world, record, { jobId: copyJob.id, at, extraMs });
  await checkCopies(world, record, copyBucket, label);
}

/** Every committed backup has its copy, byte for byte, with its sidecar; nothing half-done at the copy target; status agrees. */
async function checkCopies(world: World, record: CaseRecord, copyBucket: string, label: string): Promise<void> {
  const names = new Set<string>();
  for await (const item of world.s3.listObjectsV2(world.bucket, PREFIX, true)) if (item.name) names.add(item.name);
  const backups = [...names].filter((n) => n.endsWith('.tar.gz') && names.has(`${n}.sha256`));
  const copies = new Set<string>();
  for await (const item of world.s3.listObjectsV2(copyBucket, COPY_PREFIX, true)) if (item.name) copies.add(item.name);
  const incomplete: string[] = [];
  for await (const upload of world.s3.listIncompleteUploads(copyBucket, '', true)) incomplete.push(upload.key);

  const problems: string[] = [];
  for (const key of backups) {
    const copyKey = `${COPY_PREFIX}${key.slice(key.lastIndexOf('/') + 1)}`;
    if (!copies.has(copyKey) || !copies.has(`${copyKey}.sha256`)) {
      problems.push(`${key} has no committed copy`);
      continue;
    }
    const [original, copied] = await Promise.all([read(world, world.bucket, key), read(world, copyBucket, copyKey)]);
    if (!original.equals(copied)) problems.push(`${copyKey} differs from ${key}`);
  }
  const orphans = [...copies].filter((n) => n.endsWith('.tar.gz') && !copies.has(`${n}.sha256`));
  check(record, 'every backup has its copy, byte for byte', problems.length === 0 && backups.length > 0, problems.length === 0 ? `${backups.length} of ${backups.length}` : problems.join('; '));
  check(record, 'nothing half-done at the copy target', incomplete.length === 0 && orphans.length === 0, [...incomplete.map((k) => `incomplete upload ${k}`), ...orphans.map((k) => `copy without sidecar ${k}`)].join('; ') || 'none');

  const status = await pollUntil(async () => {
    const now = await backupStatus(world.stack);
    const target = now?.lastCopy.find((t) => t.destination === label);
    return target?.lastSuccess ? target : undefined;
  }, POLL_MS * 20, POLL_MS);
  check(record, 'status names the copy target, its last copy committed', Boolean(status && status.lastFailure === null), status ? `last copy ${status.lastSuccess?.copyKey ?? 'none'}, last failure ${status.lastFailure?.error ?? 'none'}` : `no lastCopy for ${label}`);
}

async function read(world: World, bucket: string, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await world.s3.getObject(bucket, key)) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}
