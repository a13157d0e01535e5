import { createHash } from 'node:crypto';
import type { ObjectLock } from '@chango/contracts';

/**
 * S3 Object Lock as this service writes it: every archive, sidecar and drill
 * record is retained in the destination's mode for its days from when it was
 * written. Pure: the when and the headers; BackupBucket makes the calls.
 *
 * Measured against the local Ceph RGW 16.2 (and why the archive is locked
 * differently from the small objects):
 * - minio-js's putObject prefixes every metadata key that is not x-amz-meta-*,
 *   x-amz-acl or x-amz-server-side-encryption* with `x-amz-meta-`: lock
 *   headers passed as its metadata end up as user metadata, nothing is locked.
 *   Small objects are therefore PUT by us (one signed request with the headers);
 * - RGW 16.2 ignores the lock headers on CreateMultipartUpload (from minio-js
 *   and from awscli alike): the completed object has no retention. The archive
 *   is therefore locked with PutObjectRetention on the version read back, right
 *   before the sidecar commits it — which works the same on AWS, MinIO and RGW;
 * - a PUT with lock headers needs no Content-MD5 on RGW, but AWS demands
 *   Content-MD5 (or an x-amz-checksum) on any PUT that sets a retention: it is
 *   always sent (minio-js sends it on PutObjectRetention itself);
 * - a retain-until date in the past is refused (InvalidArgument "the
 *   retain-until date must be in the future"); a version under lock refuses
 *   deletion with AccessDenied ("forbidden by object lock"), a delete without
 *   a version id adds a delete marker and is allowed.
 */

const DAY_MS = 24 * 60 * 60 * 1000;

/** The retain-until date of an object written at `now` under `lock`. */
export function retainUntil(lock: ObjectLock, now: Date): Date {
  return new Date(now.getTime() + lock.days * DAY_MS);
}

/** The request headers that write an object under `lock` (a single PUT), retained until `now` + days. */
export function objectLockHeaders(lock: ObjectLock, now: Date): Record<string, string> {
  return {
    'x-amz-object-lock-mode': lock.mode,
    'x-amz-object-lock-retain-until-date': retainUntil(lock, now).toISOString(),
  };
}

/** Content-MD5 of a body (base64 of the digest), as S3 wants it. */
export function contentMd5(body: Buffer): string {
  return createHash('md5').update(body).digest('base64');
}

/**
 * Codes a version deletion is refused with when Object Lock holds the version:
 * AccessDenied (AWS: "Access Denied because object protected by object lock";
 * Ceph RGW: "forbidden by object lock"), and ObjectLocked, which some
 * S3-compatible servers use. AccessDenied is also what a key without
 * s3:DeleteObjectVersion gets: the words that report it say both.
 */
export const LOCK_REFUSAL_CODES: ReadonlySet<string> = new Set(['AccessDenied', 'ObjectLocked']);

/** Whether a GetObjectLockConfiguration answer (minio-js's parse of it) says Object Lock is enabled. */
export function saysObjectLockEnabled(answer: unknown): boolean {
  return typeof answer === 'object' && answer !== null && (answer as { objectLockEnabled?: unknown }).objectLockEnabled === 'Enabled';
}
