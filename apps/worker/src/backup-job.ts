import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream';
import { rm } from 'node:fs/promises';
import { UnrecoverableError, type Job } from 'bullmq';
import { createArchiveStream, describeCheckpoint, manifestOf } from '@chango/archive';
import { BufferGarbage, collectGarbage } from '@chango/state';
import {
  makeBackupKey,
  parseBackupKey,
  sidecarKey,
  type BackupAttempt,
  type BackupDestination,
  type BackupJobData,
  type BackupOutcome,
  type BackupResult,
  type CommittingFacts,
  type SkippedBackup,
} from '@chango/contracts';
import { BackupBucket } from '@chango/s3';
import { encryptingStream } from '@chango/security';
import type { JobContext } from './job-context.js';
import { asJobError, attemptWords, handBackIfStopping, isFinalFailure } from './job-outcome.js';
import type { DestinationLeftovers } from './leftovers.js';
import { ProgressReporter } from './progress.js';
import { applyRetention } from './retention.js';
import { jobDeadlineMs } from './deadlines.js';
import { ensureWorkSpace, resourceExhaustion, stateBytes } from './work-space.js';

export interface BackupContext extends JobContext {
  leftovers: DestinationLeftovers;
  /** Queues a restore drill of a new backup (after scheduled backups, when enabled). */
  queueVerify: (key: string) => Promise<void>;
  /** Queues the second copy of a new backup, when a copy target is configured. */
  queueCopy: (result: BackupResult) => Promise<void>;
  /** A backup job other than this one that has started and is not over (waiting for its next attempt, or handed back). */
  backupUnderWay: (exceptJobId: string) => Promise<StartedBackup | undefined>;
}

/** What a tick needs to know of a backup already under way. */
export interface StartedBackup {
  jobId: string;
  trigger: BackupJobData['trigger'];
  attemptsMade: number;
  attempts: number;
  /** Its current attempt's archive, when one was begun. */
  key: string | undefined;
}

type BackupJob = Job<BackupJobData, BackupOutcome>;

/**
 * Dead Buffers allowed to pile up while the archive streams out before a full collection frees them
 * (BufferGarbage; V8 alone lets some 64 MiB pile up). Measured at 256 MiB of state (bench/README.md,
 * issue 15, session 9, when every file read still made a new Buffer): with 16 MiB, 5–6 collections per
 * backup and a worker peak of 152 MiB; with 24 MiB, 2 collections and 166 MiB; without, 157–162 MiB.
 */
const BUFFER_GARBAGE_SLACK_BYTES = 16 * 1024 * 1024;
/**
 * How often the Buffers' memory is looked at: every MiB read, so that the dead ones overshoot the slack by
 * little (looked at every 4 MiB, they reached 29 MiB above the live ones at 1 GiB of state). A look reads
 * process.memoryUsage(): some microseconds.
 */
const BUFFER_GARBAGE_LOOK_EVERY_BYTES = 1 * 1024 * 1024;

/** What one run knows before it starts: how big the state is, when it must end, how to stop it. */
interface RunFrame {
  stateSize: number;
  deadlineMs: number;
  signal: AbortSignal;
  progress: ProgressReporter;
  /**
   * Set once the sidecar is being written: from then on a stop or the deadline no longer cuts
   * the attempt's S3 calls (a few small, bounded ones) — cutting the sidecar's PUT after S3
   * stored it would throw away a backup that committed.
   */
  committing?: boolean;
}

/**
 * One backup job, from the queue's point of view: skip a covered tick, or make
 * (or, after a crash, recover) the backup under a watchdog, then record the
 * outcome once — success, a failure that will be retried, a final failure, or
 * the job handed back because the worker is stopping.
 */
export async function runBackup(job: BackupJob, token: string | undefined, ctx: BackupContext): Promise<BackupOutcome> {
  const skipped = await coveredTick(job, ctx);
  if (skipped) {
    ctx.log.info({ jobId: job.id, tickAt: skipped.tickAt, coveredBy: skipped.coveredBy, reason: skipped.reason }, 'scheduled tick skipped: a backup was already running');
    await ctx.ledger.recordSkip(job.data.trigger);
    return skipped;
  }
  const stateSize = await stateBytes(ctx.config.dataDir);
  const deadlineMs = jobDeadlineMs(stateSize, ctx.config);
  const progress = new ProgressReporter(job);
  const guarded = ctx.guard.begin(job.id ?? '', deadlineMs, () => progress.describe());
  try {
    const result = await guarded.bound(produceBackup(job, ctx, { stateSize, deadlineMs, signal: guarded.signal, progress }));
    // From here the backup is committed: nothing may fail the job (a retry would find it committed and complete again, harmlessly).
    await ctx.ledger.recordSuccess(job.id ?? '', result);
    await ctx.queueCopy(result).catch((err: unknown) => ctx.log.error({ key: result.key, err: (err as Error).message }, 'could not queue the second copy of the new backup'));
    if (job.data.trigger === 'schedule' && ctx.config.verifyScheduledBackups) {
      await ctx.queueVerify(result.key).catch((err: unknown) => ctx.log.error({ key: result.key, err: (err as Error).message }, 'could not queue the restore drill of the new backup'));
    }
    return result;
  } catch (err) {
    const reason = guarded.explain(err);
    await handBackIfStopping(job, token, reason, ctx.log);
    throw await failure(job, reason, ctx);
  } finally {
    guarded.end();
  }
}

/** The job's error in words, with what happens next; a final one is recorded in the ledger (status, metrics). */
async function failure(job: BackupJob, err: unknown, ctx: BackupContext): Promise<Error> {
  const base = asJobError(err, 'the backup', (e) => resourceExhaustion(e, ctx.config.workDir, 'making the backup'));
  const final = isFinalFailure(job, base);
  base.message = `${base.message} ${attemptWords(job, base, final)}`;
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
      error: base.message,
    });
  }
  return base;
}

/**
 * A scheduled tick is covered — and skipped — when a backup covers it:
 * - one that is still under way: it started before this tick ran and waits for
 *   its next attempt (a retry after backoff, or handed back by a stopping
 *   worker). Without this, ticks that fire while a backup is being retried
 *   against a silent destination would each run their own attempts, pile up
 *   faster than they fail, and push the first backup's retries ever later;
 * - or the last successful one, if it finished after the tick fired: it was
 *   running when the tick fired, or started since.
 * Backups run one at a time, so this is "a tick that finds a backup running
 * does not start a second one". A tick that found a backup which then failed
 * for good (or was stopped by its deadline) runs.
 */
async function coveredTick(job: BackupJob, ctx: BackupContext): Promise<SkippedBackup | undefined> {
  if (job.data.trigger !== 'schedule') return undefined;
  const tickAt = job.opts.prevMillis ?? job.timestamp + (job.opts.delay ?? 0);
  const tick = new Date(tickAt).toISOString();
  const underWay = await ctx.backupUnderWay(job.id ?? '').catch(() => undefined);
  if (underWay) {
    return {
      skipped: true,
      reason: `backup job ${underWay.jobId} (${underWay.trigger}) is under way: ${underWay.attemptsMade} of ${underWay.attempts} attempts made, the next one follows`,
      tickAt: tick,
      coveredBy: { jobId: underWay.jobId, key: underWay.key ?? '' },
    };
  }
  const last = await ctx.ledger.lastSuccess().catch(() => null);
  if (!last || last.jobId === job.id || Date.parse(last.finishedAt) < tickAt) return undefined;
  return {
    skipped: true,
    reason: `backup ${last.key ?? last.jobId} was running when this tick fired (${tick}) or started since, and finished at ${last.finishedAt}`,
    tickAt: tick,
    coveredBy: { jobId: last.jobId, key: last.key ?? '' },
  };
}

async function produceBackup(job: BackupJob, ctx: BackupContext, frame: RunFrame): Promise<BackupResult> {
  const destination = await ctx.state.metadata.backupDestination();
  if (!destination) {
    throw new UnrecoverableError('no backup destination is configured: PUT /admin/api/backup/config first');
  }
  const bucket = new BackupBucket(destination, { partBytes: ctx.config.partBytes, timeouts: ctx.config.s3Timeouts });
  frame.signal.addEventListener('abort', () => frame.committing || bucket.abortInFlight(frame.signal.reason as Error), { once: true });

  const earlier = job.data.attempt;
  if (earlier) {
    const recovered = await recoverCommitted(job, bucket, earlier, ctx);
    if (recovered) return recovered;
    // Not committed: what the interrupted attempt uploaded is a leftover (removed now, or remembered for later).
    await ctx.leftovers.discard(bucket, earlier.key);
  }
  const interruptions = job.stalledCounter ?? 0;
  if (interruptions >= ctx.config.retry.attempts) {
    throw new UnrecoverableError(
      `the worker making this backup died ${interruptions} time(s) before it finished (last seen in ${frame.progress.lastKnown(job)}); ` +
        'giving up rather than trying for ever: look for the cause in the worker\'s log and the system journal (out of memory, a crash)',
    );
  }
  await ensureWorkSpace(ctx.config.workDir, frame.stateSize);
  return makeBackup(job, bucket, destination, ctx, frame);
}

/**
 * A worker that takes over a job after a crash first asks the destination
 * whether the interrupted attempt committed (its sidecar exists, with the
 * checksum recorded just before it was written). If so, the job completes as
 * that success — never "failed" beside a backup that restores, and never
 * redone (which would remove it as a leftover).
 */
async function recoverCommitted(job: BackupJob, bucket: BackupBucket, earlier: BackupAttempt, ctx: BackupContext): Promise<BackupResult | undefined> {
  const sidecar = await bucket.readSidecar(earlier.key);
  if (!sidecar) return undefined;
  if (!earlier.committing || earlier.committing.sha256 !== sidecar) {
    // Never ours to claim, never ours to delete: a sidecar this attempt did not write (by hand? tampering?).
    throw new UnrecoverableError(
      `the interrupted attempt's archive ${earlier.key} has a sidecar saying ${sidecar}, which this job did not write ` +
        `(it recorded ${earlier.committing?.sha256 ?? 'nothing yet'}): left untouched for an operator to look at`,
    );
  }
  await ctx.leftovers.forget(earlier.key).catch(() => undefined);
  ctx.log.warn({ jobId: job.id, key: earlier.key }, 'the interrupted attempt had committed its backup: completing the job as that success');
  return finishCommitted(job, bucket, earlier, earlier.committing, ctx);
}

async function makeBackup(job: BackupJob, bucket: BackupBucket, destination: BackupDestination, ctx: BackupContext, frame: RunFrame): Promise<BackupResult> {
  const { signal, progress } = frame;
  const startedAt = new Date();
  const backupId = randomUUID();
  const encryption = destination.encryption;
  const key = makeBackupKey(destination.prefix, startedAt, backupId, { encrypted: encryption !== null });
  const checkpointDir = join(ctx.config.workDir, backupId);
  const attempt: BackupAttempt = { key, backupId, startedAt: startedAt.toISOString(), deadlineAt: new Date(startedAt.getTime() + frame.deadlineMs).toISOString() };

  let committed = false;
  try {
    await ctx.leftovers.sweep(bucket);
    // Remember the attempt before anything reaches S3, so a takeover after a crash can find or remove it.
    await job.updateData({ ...job.data, attempt });

    await progress.report('checkpoint');
    // The files are hashed for the manifest while the checkpoint's records are counted: one core each.
    const checkpoint = await ctx.state.checkpoint(checkpointDir, { signal, alongside: describeCheckpoint });
    const manifest = manifestOf(checkpoint.alongside, {
      backupId,
      timestamp: startedAt,
      hostname: hostname(),
      changoVersion: ctx.config.changoVersion,
      records: { kms: checkpoint.stores.kms.records, iam: checkpoint.stores.iam.records, metadata: checkpoint.stores.metadata.records },
    });
    const checkpointBytes = Object.values(manifest.stores).reduce((sum, store) => sum + store.files.reduce((s, f) => s + f.size, 0), 0);

    // Archive straight into the multipart upload — encrypted to the offline recipients when
    // asked — with no spool file: both cores compress while the parts go out. The checksum is
    // computed on the bytes as they leave and travels in the sidecar, written at the commit.
    let archived = 0;
    const garbage = new BufferGarbage(BUFFER_GARBAGE_SLACK_BYTES, BUFFER_GARBAGE_LOOK_EVERY_BYTES);
    const onRead = (bytes: number) => {
      archived += bytes;
      garbage.passed(bytes);
    };
    const tarGz = createArchiveStream(checkpointDir, manifest, { gzipLevel: ctx.config.gzipLevel, onRead });
    // pipeline() ends each with the other's failure; the upload sees it on the stream it reads, and a failed upload's destroy reaches the archive.
    const archive = encryption ? pipeline(tarGz, encryptingStream(encryption.recipients), () => undefined) : tarGz;
    const facts = await progress.while('upload', () => [archived, checkpointBytes], () => bucket.uploadStreamed(key, archive, { backupId }));
    await rm(checkpointDir, { recursive: true, force: true });
    await progress.report('commit', facts.size, facts.size);
    // The last moment a stop or the deadline may end this attempt: the commit itself is a few small, bounded calls.
    signal.throwIfAborted();
    // Fencing: a worker that lost the lease while it worked (it hung, another took over) must not commit.
    if (!(await ctx.lease.confirm())) {
      throw new Error(`worker ${ctx.config.nodeId} lost the leader lease before committing ${key}: the archive was discarded and the new leader takes the job over`);
    }
    const committing: CommittingFacts = {
      sha256: facts.sha256,
      size: facts.size,
      records: { kms: manifest.stores.kms.records, iam: manifest.stores.iam.records, metadata: manifest.stores.metadata.records },
      checkpointBytes,
      writerPauseMs: checkpoint.writerPauseMs,
    };
    await job.updateData({ ...job.data, attempt: { ...attempt, committing } });
    frame.committing = true;
    const proof = await bucket.commit(key, facts);
    committed = true;
    ctx.log.info({ jobId: job.id, key, proof }, proof === 'etag' ? 'the destination holds the archive: its ETag is the parts\' MD5s' : 'the destination holds the archive: read back whole, its SHA-256 is the archive\'s');
    return await finishCommitted(job, bucket, attempt, committing, ctx);
  } catch (err) {
    // Once committed, the backup stands whatever fails after (a progress report, a log line).
    if (!committed) await ctx.leftovers.discard(bucket, key, err);
    throw resourceExhaustion(err, ctx.config.workDir, progress.doing()) ?? err;
  } finally {
    await rm(checkpointDir, { recursive: true, force: true });
    // The archive's dead read, gzip and part Buffers go now rather than at V8's leisure: the worker idles in less memory.
    collectGarbage();
  }
}

/** After the sidecar: retention, then the result. Nothing here can undo the backup. */
async function finishCommitted(job: BackupJob, bucket: BackupBucket, attempt: BackupAttempt, facts: CommittingFacts, ctx: BackupContext): Promise<BackupResult> {
  const retention = await applyRetention(bucket, { lease: ctx.lease, ledger: ctx.ledger, log: ctx.log, keep: attempt.key });
  await job.updateProgress({ phase: 'done', bytesDone: facts.size, bytesExpected: facts.size }).catch(() => undefined);
  const finishedAt = new Date();
  const result: BackupResult = {
    backupId: attempt.backupId,
    bucket: bucket.bucket,
    key: attempt.key,
    sidecarKey: sidecarKey(attempt.key),
    sha256: facts.sha256,
    size: facts.size,
    sse: bucket.destination.sse,
    encrypted: parseBackupKey(bucket.destination.prefix, attempt.key)?.encrypted ?? false,
    records: facts.records,
    checkpointBytes: facts.checkpointBytes,
    trigger: job.data.trigger,
    nodeId: ctx.config.nodeId,
    retentionDeleted: retention.deleted,
    retentionKeptLocked: retention.keptLocked,
    writerPauseMs: facts.writerPauseMs,
    startedAt: attempt.startedAt,
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - Date.parse(attempt.startedAt),
  };
  ctx.log.info(
    { jobId: job.id, key: result.key, size: result.size, sha256: result.sha256, durationMs: result.durationMs, retentionDeleted: retention.deleted.length, retentionKeptLocked: retention.keptLocked },
    'backup committed',
  );
  return result;
}
