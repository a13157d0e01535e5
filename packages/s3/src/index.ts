export { BackupBucket, expectedChecksum, META_BACKUP_ID, META_SHA256, type ArchiveFacts, type OpenedArchive } from './backup-bucket.js';
export { createS3Client, sseHeaders, UPLOAD_PART_BYTES, type S3Location } from './client.js';
export { describeS3Error, S3Failure, type S3FailureKind, type S3Context } from './errors.js';
