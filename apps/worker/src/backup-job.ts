import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { UnrecoverableError, type Job } from 'bullmq';
import { buildManifest, createArchiveStream, HashingCounter } from '@chango/archive';
import {
  makeBackupKey,
  sidecarKey,
  type BackupJobData,
  type BackupOutcome,
  type BackupPhase,
  type BackupProgress,
  type BackupResult,
  type SkippedBackup,
} from '@chango/contracts';
import { BackupBucket, S3Failure } from '@chango/s3';
import type { ControlPlaneState } from '@chango/state';
import type { Logger } from '@chango/telemetry';
import type { WorkerConfig } from './config.js';
import type { LeaderLease } from './leader-lease.js';
import { applyRetention } from './retention.js';
import type { RunLedger } from './run-ledger.js';

export interface BackupContext {
  state: ControlPlaneState;
  config: WorkerConfig;
  log: Logger;
  lease: LeaderLease;
  ledger: RunLedger;
  /** Queues a restore drill of a new backup (after scheduled backups, when enabled). */
  queueVerify: (key: string) => Promise<void>;
}

const PROGRESS_EVERY_MS = 500;

/**
 * One backup: checkpoint → manifest → tar.gz spooled to the work dir (hashed on
 * the way) → S3 with the checksum in the object's metadata → read back →
 * sidecar written last. Checkpoint and spool file are removed whatever happens. Failures that retrying cannot fix
 * (credentials, missing bucket, SSE refused, nothing configured) fail the job
 * at once; transient ones are retried by BullMQ with backoff.
 */
export async function runBackup(job: Job<BackupJobData, BackupOutcome>, ctx: BackupContext): Promise<BackupOutcome> {
  const skipped = await coveredTick(job, ctx);
  if (skipped) {
    ctx.log.info({ jobId: job.id, tickAt: skipped.tickAt, coveredBy: skipped.coveredBy }, 'scheduled tick skipped: a backup was already running');
    await ctx.ledger.recordSkip(job.data.trigger);
    return skipped;
  }
  try {
    const result = await makeBackup(job, ctx);
    // From here the backup is committed: nothing may fail the job (a retry would remove the committed archive as a leftover).
    await ctx.ledger.recordSuccess(job.id ?? '', result);
    if (job.data.trigger === 'schedule' && ctx.config.verifyScheduledBackups) {
      await ctx.queueVerify(result.key).catch((err: unknown) => ctx.log.error({ key: result.key, err: (err as Error).message }, 'could not queue the restore drill of the new backup'));
    }
    return result;
  } catch (err) {
    const failure = asJobError(err);
    const final = failure instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (final) {
      const now = new Date();
      const startedAt = new Date(job.processedOn ?? now.getTime());
      await ctx.ledger.recordFailure({
        jobId: job.id ?? '',
        trigger: job.data.trigger,
        nodeId: ctx.config.nodeId,
        startedAt: startedAt.toISOString(),
        finishedAt: now.toISOString(),
        key: null,
        sha256: null,
        size: null,
        durationMs: now.getTime() - startedAt.getTime(),
        error: failure.message,
      });
    }
    throw failure;
  }
}

/**
 * A scheduled tick is covered — and skipped — when the last successful backup
 * finished after the tick fired: it was running when the tick fired, or
 * started since. Backups run one at a time, so this is "a tick that finds a
 * backup running does not start a second one". A tick that found a backup
 * running which then failed does run.
 */
async function coveredTick(job: Job<BackupJobData, BackupOutcome>, ctx: BackupContext): Promise<SkippedBackup | undefined> {
  if (job.data.trigger !== 'schedule') return undefined;
  const tickAt = job.opts.prevMillis ?? job.timestamp + (job.opts.delay ?? 0);
  const last = await ctx.ledger.lastSuccess().catch(() => null);
  if (!last || last.jobId === job.id || Date.parse(last.finishedAt) < tickAt) return undefined;
  return {
    skipped: true,
    reason: `backup ${last.key ?? last.jobId} was running when this tick fired (${new Date(tickAt).toISOString()}) or started since, and finished at ${last.finishedAt}`,
    tickAt: new Date(tickAt).toISOString(),
    coveredBy: { jobId: last.jobId, key: last.key ?? '' },
  };
}

async function makeBackup(job: Job<BackupJobData, BackupOutcome>, ctx: BackupContext): Promise<BackupResult> {
  const destination = await ctx.state.metadata.backupDestination();
  if (!destination) {
    throw new UnrecoverableError('no backup destination is configured: PUT /admin/api/backup/config first');
  }
  const bucket = new BackupBucket(destination, ctx.config.partBytes);
  const startedAt = new Date();
  const backupId = randomUUID();
  const key = makeBackupKey(destination.prefix, startedAt, backupId);
  const checkpointDir = join(ctx.config.workDir, backupId);
  const spoolPath = join(ctx.config.workDir, `${backupId}.tar.gz`);
  const report = (phase: BackupPhase, bytesDone = 0, bytesExpected: number | null = null) =>
    job.updateProgress({ phase, bytesDone, bytesExpected } satisfies BackupProgress);

  let committed = false;
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

    // Archive into a local spool file, hashing on the way: the checksum must be known
    // before the upload starts, to travel in the object's metadata.
    await report('archive', 0, checkpointBytes);
    const archived = new HashingCounter();
    await withProgress(
      () => report('archive', archived.bytes, checkpointBytes),
      pipeline(createArchiveStream(checkpointDir, manifest, { gzipLevel: ctx.config.gzipLevel }), archived, createWriteStream(spoolPath, { mode: 0o600 })),
    );
    await rm(checkpointDir, { recursive: true, force: true });
    const facts = { size: archived.bytes, sha256: archived.sha256(), backupId };

    await report('upload', 0, facts.size);
    const sent = new HashingCounter();
    await withProgress(() => report('upload', sent.bytes, facts.size), bucket.upload(key, createReadStream(spoolPath).pipe(sent), facts));
    if (sent.sha256() !== facts.sha256) {
      throw new Error(`the spool file ${spoolPath} changed while it was uploaded: the uploaded bytes are not the archive`);
    }
    await report('commit', facts.size, facts.size);
    // Fencing: a worker that lost the lease while it worked (it hung, another took over) must not commit.
    if (!(await ctx.lease.confirm())) {
      throw new Error(`worker ${ctx.config.nodeId} lost the leader lease before committing ${key}: the archive was discarded and the new leader takes the job over`);
    }
    await bucket.commit(key, facts);
    committed = true;
    const retentionDeleted = await applyRetention(bucket, { lease: ctx.lease, ledger: ctx.ledger, log: ctx.log, keep: key });
    await report('done', facts.size, facts.size).catch(() => undefined);
    const { sha256 } = facts;

    const finishedAt = new Date();
    const result: BackupResult = {
      backupId,
      bucket: destination.bucket,
      key,
      sidecarKey: sidecarKey(key),
      sha256,
      size: facts.size,
      sse: destination.sse,
      records: { kms: manifest.stores.kms.records, iam: manifest.stores.iam.records, metadata: manifest.stores.metadata.records },
      checkpointBytes,
      trigger: job.data.trigger,
      nodeId: ctx.config.nodeId,
      retentionDeleted,
      writerPauseMs: checkpoint.writerPauseMs,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
    };
    ctx.log.info({ jobId: job.id, key, size: result.size, sha256, durationMs: result.durationMs }, 'backup committed');
    return result;
  } catch (err) {
    // Once committed, the backup stands whatever fails after (a progress report, a log line).
    if (!committed) await bucket.discard(key);
    throw err;
  } finally {
    await Promise.all([rm(checkpointDir, { recursive: true, force: true }), rm(spoolPath, { force: true })]);
  }
}

/** Runs `work`, reporting progress every PROGRESS_EVERY_MS while it lasts. */
async function withProgress<T>(report: () => Promise<unknown>, work: Promise<T>): Promise<T> {
  const ticker = setInterval(() => void report().catch(() => undefined), PROGRESS_EVERY_MS);
  try {
    return await work;
  } finally {
    clearInterval(ticker);
  }
}

/** What an earlier, crashed attempt left: its own archive (its key is in the job data) and any incomplete multipart upload. */
async function removeLeftovers(job: Job<BackupJobData, BackupOutcome>, bucket: BackupBucket, log: Logger): Promise<void> {
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
