import { basename } from 'node:path';
import { UnrecoverableError, type Job } from 'bullmq';
import type { CopyJobData, CopyOutcome, CopyRecord, CopyResult } from '@chango/contracts';
import { NotTheArchive } from '@chango/directory-archives';
import { BackupBucket, expectedChecksum } from '@chango/s3';
import type { JobContext } from './job-context.js';
import { openCopyStore, type CopyStore } from './copy-stores.js';
import { jobDeadlineMs } from './deadlines.js';
import { asJobError, attemptWords, handBackIfStopping, isFinalFailure } from './job-outcome.js';
import { stateBytes } from './work-space.js';

export type CopyContext = JobContext;

type CopyJob = Job<CopyJobData, CopyOutcome>;

/**
 * The second copy of a committed backup, as a job of its own: queued after the
 * backup committed, so a copy target that is slow or down never delays, fails
 * or removes the primary backup. It streams the archive from the primary
 * destination to the copy target (no spool: the bytes are checked against the
 * checksum the backup committed on the way), commits it there the same way
 * (sidecar last), then applies the target's retention.
 *
 * Transient trouble (a target that does not answer) is retried with the
 * backup's attempts and backoff; a copy that fails for good is recorded per
 * target — status `lastCopy`, `chango_backup_copy_*{destination}` and the
 * ChangoBackupCopyFailing alert — and the next backup's copy tries again.
 */
export async function runCopy(job: CopyJob, token: string | undefined, ctx: CopyContext): Promise<CopyOutcome> {
  const destination = await ctx.state.metadata.backupDestination();
  if (!destination?.copy) {
    return { skipped: true, reason: 'no second copy is configured any more: nothing to copy' };
  }
  const store = openCopyStore(destination.copy, { partBytes: ctx.config.partBytes, s3Timeouts: ctx.config.s3Timeouts });
  const primary = new BackupBucket(destination, { timeouts: ctx.config.s3Timeouts });
  const deadlineMs = jobDeadlineMs(await stateBytes(ctx.config.dataDir), ctx.config);
  const guarded = ctx.guard.begin(job.id ?? '', deadlineMs, () => `copying to ${store.destination}`);
  guarded.signal.addEventListener(
    'abort',
    () => {
      primary.abortInFlight(guarded.signal.reason as Error);
      store.abort(guarded.signal.reason as Error);
    },
    { once: true },
  );
  const startedAt = new Date();
  try {
    const result = await guarded.bound(copy(job, primary, store, ctx, startedAt));
    await ctx.ledger.recordCopy(store.destination, true, record(job, startedAt, result.key, null));
    ctx.log.info({ jobId: job.id, backupKey: job.data.key, destination: store.destination, copyKey: result.key, durationMs: result.durationMs }, 'second copy committed');
    return result;
  } catch (err) {
    const reason = guarded.explain(err);
    await handBackIfStopping(job, token, reason, ctx.log);
    const failure = asJobError(reason, `copying the backup to ${store.destination}`);
    const final = isFinalFailure(job, failure);
    failure.message = `${failure.message} ${attemptWords(job, failure, final)}`;
    if (final) {
      await ctx.ledger.recordCopy(store.destination, false, record(job, startedAt, null, failure.message));
      ctx.log.error({ jobId: job.id, backupKey: job.data.key, destination: store.destination, reason: failure.message }, 'second copy FAILED: the backup has no copy there (the primary backup stands)');
    }
    throw failure;
  } finally {
    guarded.end();
  }
}

async function copy(job: CopyJob, primary: BackupBucket, store: CopyStore, ctx: CopyContext, startedAt: Date): Promise<CopyResult> {
  const { key, sha256, size } = job.data;
  await job.updateProgress({ phase: 'copy', bytesDone: 0, bytesExpected: size });
  const archive = await primary.open(key);
  const expected = expectedChecksum(archive);
  if ('problem' in expected || expected.sha256 !== sha256) {
    archive.stream.destroy();
    const why = 'problem' in expected ? expected.problem : `its sidecar now says ${expected.sha256}, but the backup committed ${sha256}`;
    throw new UnrecoverableError(`the backup ${key} at the primary destination cannot be copied: ${why}`);
  }
  let copied: string;
  try {
    copied = await store.store(basename(key), archive.stream, { size, sha256, backupId: job.data.backupId });
  } catch (err) {
    // Bytes that are not the backup's will not become right on a retry.
    throw err instanceof NotTheArchive ? new UnrecoverableError(err.message) : err;
  }
  const retentionDeleted = await store.retain(copied, { lease: ctx.lease, log: ctx.log });
  await job.updateProgress({ phase: 'done', bytesDone: size, bytesExpected: size }).catch(() => undefined);
  const finishedAt = new Date();
  return {
    destination: store.destination,
    key: copied,
    sha256,
    size,
    retentionDeleted,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
  };
}

function record(job: CopyJob, startedAt: Date, copyKey: string | null, error: string | null): CopyRecord {
  const finishedAt = new Date();
  return { jobId: job.id ?? '', key: job.data.key, copyKey, finishedAt: finishedAt.toISOString(), durationMs: finishedAt.getTime() - startedAt.getTime(), error };
}
