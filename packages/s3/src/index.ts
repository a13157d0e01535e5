export { firstArchiveBound, groupArchives, MAX_KEYS_PER_REQUEST, newestFirst, seekNewest, startAfterTime, walkPage, type ListedArchive, type ListedObject, type ListRequest, type SeekHint, type SeekRequest, type SeekResult, type WalkPage } from './archive-listing.js';
export { BackupBucket, expectedChecksum, META_BACKUP_ID, META_SHA256, type ArchiveFacts, type BackupBucketOptions, type BackupPage, type CommitProof, type ObjectLockStatus, type OpenedArchive, type RemovalOutcome } from './backup-bucket.js';
export { BoundedLru } from './bounded-lru.js';
export { BoundedHttpAgent, BoundedHttpsAgent, createBoundedAgent, type BoundedAgent } from './bounded-agent.js';
export { createS3Client, sseHeaders, UPLOAD_PART_BYTES, type S3Location } from './client.js';
export { describeS3Error, S3Failure, type S3FailureKind, type S3Context } from './errors.js';
export {
  DEFAULT_S3_TIMEOUTS,
  resolveS3Timeouts,
  s3TimeoutsFromEnv,
  S3_TIMEOUT_CODE,
  S3_TIMEOUT_SETTINGS,
  S3TimeoutError,
  transferDeadlineMs,
  type S3Bound,
  type S3Timeouts,
} from './timeouts.js';
export { mapLimited } from './map-limited.js';
export { contentMd5, LOCK_REFUSAL_CODES, objectLockHeaders, retainUntil, saysObjectLockEnabled } from './object-lock.js';
export { purgeVersions, type ObjectVersion, type PurgeIo, type PurgeOptions, type PurgeOutcome, type Refusal } from './version-purge.js';
export { multipartEtag, plainEtag, streamParts, type PartSink, type StreamedParts, type StreamPartsOptions } from './streamed-upload.js';
