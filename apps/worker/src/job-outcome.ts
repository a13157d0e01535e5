import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { formatDuration, type Logger } from '@chango/telemetry';
import { S3Failure } from '@chango/s3';
import { JobInterrupted } from './job-guard.js';

/** A job handed back by a stopping worker waits this long, so that the worker taking over (or this one, restarted) finds it. */
const HAND_BACK_DELAY_MS = 1000;

/** Final: retrying cannot fix it, or this was the last attempt. */
export function isFinalFailure(job: Job, err: Error): boolean {
  return err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/**
 * What happens next, in words, appended to a failure's message: a final
 * failure never promises a retry, a retried one says when.
 */
export function attemptWords(job: Job, err: Error, final: boolean): string {
  const attempts = job.opts.attempts ?? 1;
  const attempt = job.attemptsMade + 1;
  if (!final) return `(attempt ${attempt} of ${attempts}; the next one in ${formatDuration(nextBackoffMs(job, attempt))})`;
  if (err instanceof UnrecoverableError && attempt < attempts) return `(attempt ${attempt} of ${attempts}; not retried: retrying cannot fix this)`;
  return `(attempt ${attempt} of ${attempts}; no attempt left)`;
}

/** BullMQ's delay before the next attempt, as it computes it (exponential: delay × 2^(attempt−1)). */
function nextBackoffMs(job: Job, attempt: number): number {
  const backoff = job.opts.backoff;
  if (backoff === undefined) return 0;
  if (typeof backoff === 'number') return backoff;
  const delay = backoff.delay ?? 0;
  return backoff.type === 'exponential' ? Math.round(2 ** (attempt - 1) * delay) : delay;
}

/**
 * A stopping worker gives the job in hand back to the queue instead of
 * failing it: it waits (delayed) for the next leader, or for this worker
 * restarted, and the attempt it was on is not counted. When `reason` (what
 * the job's guard explained its end with) is the worker stopping, the job is
 * handed back and BullMQ's DelayedError thrown, which tells BullMQ the job has
 * been moved; otherwise nothing happens and the caller records the failure.
 */
export async function handBackIfStopping(job: Job, token: string | undefined, reason: unknown, log: Logger): Promise<void> {
  if (!(reason instanceof JobInterrupted && reason.kind === 'stopping' && token)) return;
  await job.moveToDelayed(Date.now() + HAND_BACK_DELAY_MS, token);
  log.warn({ jobId: job.id, job: job.name, reason: reason.message }, 'job handed back to the queue: the next leader (or this worker, restarted) takes it over');
  throw new DelayedError();
}

/**
 * Which failures end a job at once (BullMQ's UnrecoverableError): S3 refusals
 * retrying cannot fix, a passed deadline. Network trouble, timeouts and
 * interruptions may be retried. `subject` names the job in the words: "the
 * backup", "the restore drill".
 */
export function asJobError(err: unknown, subject: string, exhaustion?: (err: unknown) => Error | undefined): Error {
  if (err instanceof UnrecoverableError) return err;
  if (err instanceof S3Failure) return err.retryable ? new Error(err.message) : new UnrecoverableError(err.message);
  if (err instanceof JobInterrupted) {
    return err.kind === 'deadline' ? new UnrecoverableError(`${subject} ${err.message}`) : new Error(`${subject} was interrupted: ${err.message}`);
  }
  // A full disk (the caller says which folder) is final too.
  const exhausted = exhaustion?.(err);
  if (exhausted) return exhausted;
  return err instanceof Error ? err : new Error(String(err));
}
