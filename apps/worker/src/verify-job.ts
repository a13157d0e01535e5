import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { parseBackupKey, type DrillKind, type VerificationRecord, type VerifyJobData } from '@chango/contracts';
import { BackupBucket } from '@chango/s3';
import type { ControlPlaneState } from '@chango/state';
import type { Logger } from '@chango/telemetry';
import type { WorkerConfig } from './config.js';
import { jobDeadlineMs } from './deadlines.js';
import { drillInChildProcess } from './drill-process.js';
import { JobInterrupted, type JobGuard } from './job-guard.js';
import { asJobError, attemptWords, handBack, isFinalFailure } from './job-outcome.js';
import type { RunLedger } from './run-ledger.js';
import { stateBytes } from './work-space.js';

export interface VerifyContext {
  state: ControlPlaneState;
  config: WorkerConfig;
  log: Logger;
  ledger: RunLedger;
  guard: JobGuard;
}

/**
 * The restore drill as a job. The drill itself runs in a child process (see
 * drill-child.ts); a verdict — passed, or the backup does not restore — is
 * written beside the archive (`<key>.verify.json`) and kept as the last drill.
 * S3 trouble is no verdict: transient trouble is retried, a refusal (no such
 * key, credentials) ends the job with its words.
 */
export async function runVerify(job: Job<VerifyJobData, VerificationRecord>, token: string | undefined, ctx: VerifyContext): Promise<VerificationRecord> {
  // The drill restores what the backup holds, about the state's size: the same budget as a backup.
  const deadlineMs = jobDeadlineMs(await stateBytes(ctx.config.dataDir), ctx.config);
  const guarded = ctx.guard.begin(job.id ?? '', deadlineMs, () => 'phase verify');
  try {
    return await guarded.bound(drill(job, ctx, guarded.signal));
  } catch (err) {
    const reason = guarded.explain(err);
    if (reason instanceof JobInterrupted && reason.kind === 'stopping' && token) {
      await handBack(job, token, reason, ctx.log);
      throw new DelayedError();
    }
    // A drill that did not run to its end says nothing about the backup: no verdict is recorded.
    const failure = asJobError(reason, 'the restore drill');
    failure.message = `${failure.message} ${attemptWords(job, failure, isFinalFailure(job, failure))}`;
    throw failure;
  } finally {
    guarded.end();
  }
}

async function drill(job: Job<VerifyJobData, VerificationRecord>, ctx: VerifyContext, signal: AbortSignal): Promise<VerificationRecord> {
  const destination = await ctx.state.metadata.backupDestination();
  if (!destination) throw new UnrecoverableError('no backup destination is configured: nothing to verify');
  const bucket = new BackupBucket(destination, { timeouts: ctx.config.s3Timeouts });
  signal.addEventListener('abort', () => bucket.abortInFlight(signal.reason as Error), { once: true });
  const key = job.data.key ?? (await newestCompleteBackup(bucket));
  const started = Date.now();
  await job.updateProgress({ phase: 'verify', bytesDone: 0, bytesExpected: null });

  const answer = await drillInChildProcess(
    { destination, key, workDir: ctx.config.workDir, s3Timeouts: ctx.config.s3Timeouts },
    { rootSecret: ctx.config.rootSecret, identities: ctx.config.ageIdentities },
    signal,
  );
  signal.throwIfAborted();
  if (answer.outcome === 'unavailable') {
    if (answer.retryable) throw new Error(answer.error);
    throw new UnrecoverableError(answer.error);
  }
  const passed = answer.outcome === 'passed';
  const outcome: VerificationRecord = {
    key,
    ok: passed,
    // A drill that failed before it knew better is counted as the drill it set out to be.
    kind: passed ? answer.kind : drillKindFor(key, destination.prefix, ctx.config.ageIdentities),
    verifiedAt: new Date().toISOString(),
    durationMs: Date.now() - started,
    nodeId: ctx.config.nodeId,
    sha256: passed ? answer.sha256 : null,
    records: passed ? answer.records : null,
    error: passed ? null : answer.error,
  };
  if (passed && outcome.kind === 'checksum') {
    ctx.log.info({ key, kind: outcome.kind, durationMs: outcome.durationMs }, 'checksum drill passed: the encrypted archive holds the bytes its sidecar names (no identity on this worker to restore it)');
  } else if (passed) ctx.log.info({ key, kind: outcome.kind, records: outcome.records, durationMs: outcome.durationMs }, 'restore drill passed');
  else ctx.log.error({ key, reason: outcome.error }, 'restore drill FAILED: this backup does not restore');
  await bucket.recordVerification(outcome).catch((err: unknown) => ctx.log.error({ key, err: (err as Error).message }, 'could not write the drill record beside the backup'));
  await ctx.ledger.recordVerification(outcome);
  if (!passed) throw new UnrecoverableError(`restore drill of ${key} failed: ${outcome.error ?? 'unknown reason'}`);
  return outcome;
}

/** The drill a key gets on this worker: a restore, unless it is encrypted and the worker holds no identity. */
function drillKindFor(key: string, prefix: string, identities: readonly string[]): DrillKind {
  return parseBackupKey(prefix, key)?.encrypted && identities.length === 0 ? 'checksum' : 'restore';
}

async function newestCompleteBackup(bucket: BackupBucket): Promise<string> {
  const newest = await bucket.newestComplete();
  if (!newest) throw new UnrecoverableError(`there is no complete backup under s3://${bucket.bucket}/${bucket.destination.prefix} to verify`);
  return newest.key;
}
