import type { Job } from 'bullmq';
import {
  copyDestinationLabel,
  resolveCopyTarget,
  resolveDestination,
  toPublicDestination,
  withoutSecrets,
  DestinationUpdateSchema,
  ObjectsPageSchema,
  parseBackupKey,
  fieldErrors,
  type ConfigResult,
  type ControlJobData,
  type ControlOutcome,
  type ObjectsPage,
  type ObjectsResult,
} from '@chango/contracts';
import { openSealedForWorker, type WorkerTransportKey } from '@chango/security';
import { BackupBucket, S3Failure, type S3Timeouts } from '@chango/s3';
import type { ControlPlaneState } from '@chango/state';
import type { Logger } from '@chango/telemetry';
import type { DestinationReplica } from './destination-replica.js';
import type { RunLedger } from './run-ledger.js';
import { copyAsDestination } from './copy-stores.js';
import { objectLockRefusal } from './object-lock-check.js';

export interface ControlContext {
  state: ControlPlaneState;
  transportKey: WorkerTransportKey;
  log: Logger;
  /** Stores and publishes a saved destination (its listeners bring the schedule in line). */
  replica: DestinationReplica;
  /** Where the last copies per target are remembered (an old target's are forgotten when the destination is saved). */
  ledger: Pick<RunLedger, 'forgetCopyTargetsExcept'>;
  /** Bounds of the S3 calls a listing makes (the worker's CHANGO_S3_* settings). */
  s3Timeouts: S3Timeouts;
}

/** What a control job answers the api: a destination, a page of backups, or a refusal in words. */
export type ControlAnswer = ControlOutcome<ConfigResult | ObjectsResult>;

/** Answers the api's short requests: read or save the destination, list the backups there. */
export async function runControlJob(job: Job<ControlJobData, ControlAnswer>, ctx: ControlContext): Promise<ControlAnswer> {
  const data = job.data;
  switch (data.op) {
    case 'config.get': {
      const stored = await ctx.state.metadata.backupDestination();
      return { ok: true, value: { config: stored ? toPublicDestination(stored) : null } };
    }
    case 'config.put':
      return saveDestination(data, ctx);
    case 'objects.list':
      return listObjects(data.page, ctx);
  }
}

async function saveDestination(data: Extract<ControlJobData, { op: 'config.put' }>, ctx: ControlContext): Promise<ControlAnswer> {
  // The api validated already; check again here, where it is stored: the worker trusts nothing from Redis.
  const parsed = DestinationUpdateSchema.safeParse(data.update);
  if (!parsed.success) return refused('invalid_config', parsed.error);
  // Secret keys arrive sealed, never inside the update: one there came from something other than our api.
  const { update, secretKey: plainSecret, copySecretKey: plainCopySecret } = withoutSecrets(parsed.data);
  if (plainSecret !== undefined || plainCopySecret !== undefined) {
    return { ok: false, status: 400, error: 'invalid_config', field: plainSecret !== undefined ? 'secretKey' : 'copy.secretKey', message: 'must arrive sealed to the worker, not in the update' };
  }
  const stored = await ctx.state.metadata.backupDestination();
  const secretKey = data.sealedSecretKey ? openSealedForWorker(data.sealedSecretKey, ctx.transportKey) : stored?.secretKey;
  if (!secretKey) {
    return { ok: false, status: 400, error: 'invalid_config', field: 'secretKey', message: 'is required: no secret key is stored yet' };
  }
  const storedCopySecret = stored?.copy?.type === 's3' ? stored.copy.secretKey : undefined;
  const copySecretKey = data.sealedCopySecretKey ? openSealedForWorker(data.sealedCopySecretKey, ctx.transportKey) : storedCopySecret;
  if (update.copy?.type === 's3' && !copySecretKey) {
    return { ok: false, status: 400, error: 'invalid_config', field: 'copy.secretKey', message: 'is required: no secret key is stored for the S3 copy yet' };
  }
  const destination = resolveDestination(update, secretKey, resolveCopyTarget(update.copy, copySecretKey));
  const lockRefused =
    (await objectLockRefusal(destination, ctx.s3Timeouts)) ??
    (destination.copy?.type === 's3' ? await objectLockRefusal(copyAsDestination(destination.copy), ctx.s3Timeouts, 'copy.') : undefined);
  if (lockRefused) return lockRefused;
  const revision = await ctx.replica.save(destination);
  // Status shows the copy target that is configured: what was recorded of an earlier one goes.
  await ctx.ledger.forgetCopyTargetsExcept(destination.copy ? copyDestinationLabel(destination.copy) : null);
  ctx.log.info(
    { endpoint: destination.endpoint, bucket: destination.bucket, prefix: destination.prefix, schedule: destination.schedule, objectLock: destination.objectLock, revision: revision.revision, secretKeyChanged: Boolean(data.sealedSecretKey) },
    'backup destination saved',
  );
  return { ok: true, value: { config: toPublicDestination(destination) } };
}

async function listObjects(page: ObjectsPage, ctx: ControlContext): Promise<ControlAnswer> {
  const parsed = ObjectsPageSchema.safeParse(page);
  if (!parsed.success) return refused('invalid_query', parsed.error);
  const destination = await ctx.state.metadata.backupDestination();
  if (!destination) return { ok: false, status: 404, error: 'not_configured', message: 'no backup destination is configured: PUT /admin/api/backup/config first' };
  const { limit, cursor } = parsed.data;
  if (cursor !== undefined && !parseBackupKey(destination.prefix, cursor)) {
    return { ok: false, status: 400, error: 'invalid_query', field: 'cursor', message: `is not a backup under the prefix '${destination.prefix}': pass the nextCursor of an earlier page` };
  }
  try {
    const found = await new BackupBucket(destination, { timeouts: ctx.s3Timeouts }).page({ limit, before: cursor });
    return { ok: true, value: { bucket: destination.bucket, prefix: destination.prefix, objects: found.objects, nextCursor: found.next } };
  } catch (err) {
    if (err instanceof S3Failure) return { ok: false, status: 502, error: `s3_${err.kind.replace('-', '_')}`, message: err.message };
    throw err;
  }
}

/** A request the worker turns down as invalid: a 400 naming the first field at fault. */
function refused(error: string, invalid: Parameters<typeof fieldErrors>[0]): ControlAnswer {
  const first = fieldErrors(invalid)[0];
  return { ok: false, status: 400, error, message: first?.message ?? 'invalid request', ...(first ? { field: first.field } : {}) };
}
