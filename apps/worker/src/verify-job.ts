import { UnrecoverableError, type Job } from 'bullmq';
import { basename } from 'node:path';
import { parseBackupKey, type BackupDestination, type DrillKind, type DrillSource, type VerificationRecord, type VerifyJobData } from '@chango/contracts';
import { BackupBucket } from '@chango/s3';
import type { JobContext } from './job-context.js';
import { jobDeadlineMs } from './deadlines.js';
import { openCopyStore } from './copy-stores.js';
import { drillInChildProcess } from './drill-process.js';
import { asJobError, attemptWords, handBackIfStopping, isFinalFailure } from './job-outcome.js';
import { stateBytes } from './work-space.js';

export type VerifyContext = Omit<JobContext, 'lease'>;

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
    await handBackIfStopping(job, token, reason, ctx.log);
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
  const from = job.data.from ?? 'primary';
  const place = drilledPlace(destination, from, ctx);
  signal.addEventListener('abort', () => place.abort(signal.reason as Error), { once: true });
  const key = job.data.key === null ? await place.newestComplete() : place.keyOf(job.data.key);
  const started = Date.now();
  await job.updateProgress({ phase: 'verify', bytesDone: 0, bytesExpected: null });

  const answer = await drillInChildProcess(
    { destination, from, key, workDir: ctx.config.workDir, s3Timeouts: ctx.config.s3Timeouts },
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
    kind: passed ? answer.kind : drillKindFor(key, ctx.config.ageIdentities),
    source: from,
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
  await place.recordVerification(outcome).catch((err: unknown) => ctx.log.error({ key, err: (err as Error).message }, 'could not write the drill record beside the backup'));
  await ctx.ledger.recordVerification(outcome);
  if (!passed) throw new UnrecoverableError(`restore drill of ${key} failed: ${outcome.error ?? 'unknown reason'}`);
  return outcome;
}

/** The drill a key gets on this worker: a restore, unless it is encrypted and the worker holds no identity. */
function drillKindFor(key: string, identities: readonly string[]): DrillKind {
  return parseBackupKey('', basename(key))?.encrypted && identities.length === 0 ? 'checksum' : 'restore';
}

/** Where a drill reads: the primary destination or the second copy — what to drill there, and where its record goes. */
interface DrilledPlace {
  /** Where the backup with this primary key (or copy name) is here. */
  keyOf(key: string): string;
  newestComplete(): Promise<string>;
  recordVerification(record: VerificationRecord): Promise<void>;
  abort(reason: Error): void;
}

function drilledPlace(destination: BackupDestination, from: DrillSource, ctx: VerifyContext): DrilledPlace {
  if (from === 'copy') {
    if (!destination.copy) throw new UnrecoverableError('a drill from the second copy was asked for, but no second copy is configured: there is nothing to drill from');
    const store = openCopyStore(destination.copy, { s3Timeouts: ctx.config.s3Timeouts });
    return {
      keyOf: (key) => store.keyOf(basename(key)),
      newestComplete: async () => (await store.newestComplete()) ?? Promise.reject(new UnrecoverableError(`there is no complete backup at the second copy ${store.destination} to verify`)),
      recordVerification: (record) => store.recordVerification(record),
      abort: (reason) => store.abort(reason),
    };
  }
  const bucket = new BackupBucket(destination, { timeouts: ctx.config.s3Timeouts });
  return {
    keyOf: (key) => key,
    newestComplete: async () => (await bucket.newestComplete())?.key ?? Promise.reject(new UnrecoverableError(`there is no complete backup under s3://${bucket.bucket}/${destination.prefix} to verify`)),
    recordVerification: (record) => bucket.recordVerification(record),
    abort: (reason) => bucket.abortInFlight(reason),
  };
}
