import { Job, type JobState, type Queue } from 'bullmq';
import type { BackupJobData, BackupProgress, BackupQueueData, BackupQueueResult } from '@chango/contracts';

export type BackupQueueJob = Job<BackupQueueData, BackupQueueResult>;

/**
 * A job of the backup queue as the api shows it: state, progress, and the
 * result (a backup, a skipped tick, or a drill record) or a readable failure.
 */
export interface JobView {
  id: string;
  /** 'backup', 'verify' or 'copy'. */
  kind: string;
  state: JobState | 'unknown';
  trigger: BackupJobData['trigger'] | 'verify';
  requestedBy: string;
  /** For a drill: the backup it restores; for a copy: the backup it copies. */
  key: string | null;
  progress: BackupProgress | null;
  attemptsMade: number;
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** A backup's current attempt: when the worker's watchdog stops it. */
  deadlineAt: string | null;
  result: BackupQueueResult | null;
  failure: { message: string } | null;
}

/**
 * The job's hash and its state are two reads. A job loaded while active and
 * finished before `getState` answers would show `completed` with the fields
 * of its last active moment (no result, no finish time) — the admin page once
 * showed a finished backup with an empty key that way. A finished job never
 * changes again, so reading it once more after its state gives one picture.
 */
export async function viewJob(loaded: BackupQueueJob, queue: Queue): Promise<JobView> {
  const state = await loaded.getState();
  const finished = state === 'completed' || state === 'failed';
  const job: BackupQueueJob = finished && !loaded.finishedOn ? ((await Job.fromId(queue, loaded.id ?? '')) ?? loaded) : loaded;
  const data = job.data;
  return {
    id: job.id ?? '',
    kind: job.name,
    state,
    trigger: 'trigger' in data ? data.trigger : 'verify',
    requestedBy: data.requestedBy,
    key: 'key' in data ? data.key : null,
    progress: isProgress(job.progress) ? job.progress : null,
    attemptsMade: job.attemptsMade,
    attempts: job.opts.attempts ?? 1,
    createdAt: new Date(job.timestamp).toISOString(),
    startedAt: job.processedOn ? new Date(job.processedOn).toISOString() : null,
    finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
    deadlineAt: 'attempt' in data && data.attempt ? data.attempt.deadlineAt : null,
    result: state === 'completed' ? (job.returnvalue ?? null) : null,
    // A completed job's story is its result: an attempt that failed before it is history (attemptsMade tells it).
    // Still going, the last attempt's failure says why it is retried; failed, it is the final word.
    failure: state !== 'completed' && job.failedReason ? { message: job.failedReason } : null,
  };
}

function isProgress(value: unknown): value is BackupProgress {
  return typeof value === 'object' && value !== null && 'phase' in value;
}
