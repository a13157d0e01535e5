import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { UnrecoverableError, type Job } from 'bullmq';
import { buildManifest, createArchiveStream, HashingCounter } from '@chango/archive';
import { makeBackupKey, sidecarKey, type BackupJobData, type BackupPhase, type BackupProgress, type BackupResult } from '@chango/contracts';
import { BackupBucket, S3Failure } from '@chango/s3';
import type { ControlPlaneState } from '@chango/state';
import type { Logger } from '@chango/telemetry';
import type { WorkerConfig } from './config.js';

export interface BackupContext {
  state: ControlPlaneState;
  config: WorkerConfig;
  log: Logger;
}

const PROGRESS_EVERY_MS = 500;

/**
 * One backup: checkpoint → manifest → tar.gz (streamed, hashed on the way) →
 * S3 → read back, checksum stamped, sidecar written last. The checkpoint
 * folder is removed whatever happens. Failures that retrying cannot fix
 * (credentials, missing bucket, SSE refused, nothing configured) fail the job
 * at once; transient ones are retried by BullMQ with backoff.
 */
export async function runBackup(job: Job<BackupJobData, BackupResult>, ctx: BackupContext): Promise<BackupResult> {
  const destination = await ctx.state.metadata.backupDestination();
  if (!destination) {
    throw new UnrecoverableError('no backup destination is configured: PUT /admin/api/backup/config first');
  }
  const bucket = new BackupBucket(destination, ctx.config.partBytes);
  const startedAt = new Date();
  const backupId = randomUUID();
  const key = makeBackupKey(destination.prefix, startedAt, backupId);
  const checkpointDir = join(ctx.config.workDir, backupId);
  const report = (phase: BackupPhase, bytesDone = 0, bytesExpected: number | null = null) =>
    job.updateProgress({ phase, bytesDone, bytesExpected } satisfies BackupProgress);

  try {
    await removeLeftovers(job, bucket, ctx.log);
    // Remember the key before anything reaches S3, so a retry after a crash can remove it.
    await job.updateData({ ...job.data, attemptKey: key });

    await report('checkpoint');
    const checkpoint = await ctx.state.checkpoint(checkpointDir);
    const manifest = await buildManifest(checkpointDir, {
      backupId,
      timestamp: startedAt,
      hostname: hostname(),
      changoVersion: ctx.config.changoVersion,
      records: { kms: checkpoint.stores.kms.records, iam: checkpoint.stores.iam.records, metadata: checkpoint.stores.metadata.records },
    });
    const checkpointBytes = Object.values(manifest.stores).reduce((sum, store) => sum + store.files.reduce((s, f) => s + f.size, 0), 0);

    await report('upload', 0, checkpointBytes);
    const hashed = new HashingCounter();
    const archive = createArchiveStream(checkpointDir, manifest, { gzipLevel: ctx.config.gzipLevel });
    archive.once('error', (err) => hashed.destroy(err));
    archive.pipe(hashed);
    const ticker = setInterval(() => void report('upload', hashed.bytes, checkpointBytes).catch(() => undefined), PROGRESS_EVERY_MS);
    try {
      await bucket.upload(key, hashed);
    } finally {
      clearInterval(ticker);
    }

    const sha256 = hashed.sha256();
    await report('commit', hashed.bytes, checkpointBytes);
    await bucket.commit(key, { size: hashed.bytes, sha256, backupId });
    await report('done', hashed.bytes, checkpointBytes);

    const finishedAt = new Date();
    const result: BackupResult = {
      backupId,
      bucket: destination.bucket,
      key,
      sidecarKey: sidecarKey(key),
      sha256,
      size: hashed.bytes,
      sse: destination.sse,
      records: { kms: manifest.stores.kms.records, iam: manifest.stores.iam.records, metadata: manifest.stores.metadata.records },
      checkpointBytes,
      writerPauseMs: checkpoint.writerPauseMs,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
    };
    ctx.log.info({ jobId: job.id, key, size: result.size, sha256, durationMs: result.durationMs }, 'backup committed');
    return result;
  } catch (err) {
    await bucket.discard(key);
    throw asJobError(err);
  } finally {
    await rm(checkpointDir, { recursive: true, force: true });
  }
}

/** What an earlier, crashed attempt left: its own archive (its key is in the job data) and any incomplete multipart upload. */
async function removeLeftovers(job: Job<BackupJobData, BackupResult>, bucket: BackupBucket, log: Logger): Promise<void> {
  if (job.data.attemptKey) {
    await bucket.discard(job.data.attemptKey);
    log.warn({ jobId: job.id, key: job.data.attemptKey }, 'removed what an interrupted attempt left at the destination');
  }
  // Backups run one at a time, so any incomplete upload of ours is a leftover.
  const aborted = await bucket.abortIncompleteUploads();
  if (aborted.length > 0) log.warn({ jobId: job.id, keys: aborted }, 'aborted incomplete multipart uploads');
}

/** Non-retryable S3 failures end the job at once (BullMQ's UnrecoverableError); the rest may be retried. */
function asJobError(err: unknown): Error {
  if (err instanceof S3Failure) return err.retryable ? new Error(err.message) : new UnrecoverableError(err.message);
  return err instanceof Error ? err : new Error(String(err));
}
