import type { BackupDestination, ControlOutcome } from '@chango/contracts';
import { BackupBucket, S3Failure, type S3Timeouts } from '@chango/s3';

/** A destination the worker will not save, as the api passes it on (status, error, field, words). */
export type SaveRefusal = Extract<ControlOutcome<never>, { ok: false }>;

/**
 * Before a destination with `objectLock` is saved: does its bucket have
 * Object Lock enabled? Without it every locked PUT would be refused (or, on
 * some servers, silently not locked), so the save is refused now, naming the
 * field and what to do, rather than every backup failing later. One
 * GetObjectLockConfiguration, bounded like every S3 call (CHANGO_S3_*).
 * Undefined: go ahead (no lock asked for, or the bucket has it). `fieldPrefix`
 * names the fields of an S3 copy target (`copy.`).
 */
export async function objectLockRefusal(destination: BackupDestination, timeouts: S3Timeouts, fieldPrefix = ''): Promise<SaveRefusal | undefined> {
  const lock = destination.objectLock;
  if (!lock) return undefined;
  const where = `bucket "${destination.bucket}" at ${destination.endpoint}`;
  let status;
  try {
    status = await new BackupBucket(destination, { timeouts }).objectLockStatus();
  } catch (err) {
    if (!(err instanceof S3Failure)) throw err;
    if (err.kind === 'bucket-missing') return { ok: false, status: 400, error: 'invalid_config', field: `${fieldPrefix}bucket`, message: err.message };
    if (err.kind === 'credentials') return { ok: false, status: 400, error: 'invalid_config', field: `${fieldPrefix}accessKey`, message: err.message };
    const hint = err.kind === 'permission' ? ' (reading it needs s3:GetBucketObjectLockConfiguration)' : '';
    return {
      ok: false,
      status: 502,
      error: `s3_${err.kind.replace('-', '_')}`,
      message: `could not check that ${where} has Object Lock enabled, so nothing was saved: ${err.message}${hint}`,
    };
  }
  if (status.enabled) return undefined;
  return {
    ok: false,
    status: 400,
    error: 'invalid_config',
    field: `${fieldPrefix}objectLock`,
    message:
      `cannot be used: ${where} does not have Object Lock enabled (asked for its Object Lock configuration, it answered ${status.answer}). ` +
      'Create a bucket with Object Lock enabled (aws s3api create-bucket --bucket NAME --object-lock-enabled-for-bucket, or mc mb --with-lock ALIAS/NAME) and point the destination at it, ' +
      'or set objectLock to null to back up without it',
  };
}
