import type { Job, JobState } from 'bullmq';
import type { BackupJobData, BackupProgress, BackupResult } from '@chango/contracts';

/** A backup job as the api shows it: state, progress, and the result or a readable failure. */
export interface JobView {
  id: string;
  state: JobState | 'unknown';
  trigger: BackupJobData['trigger'];
  requestedBy: string;
  progress: BackupProgress | null;
  attemptsMade: number;
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  result: BackupResult | null;
  failure: { message: string } | null;
}

export async function viewJob(job: Job<BackupJobData, BackupResult>): Promise<JobView> {
  const state = await job.getState();
  return {
    id: job.id ?? '',
    state,
    trigger: job.data.trigger,
    requestedBy: job.data.requestedBy,
    progress: isProgress(job.progress) ? job.progress : null,
    attemptsMade: job.attemptsMade,
    attempts: job.opts.attempts ?? 1,
    createdAt: new Date(job.timestamp).toISOString(),
    startedAt: job.processedOn ? new Date(job.processedOn).toISOString() : null,
    finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
    result: state === 'completed' ? (job.returnvalue ?? null) : null,
    failure: job.failedReason ? { message: job.failedReason } : null,
  };
}

function isProgress(value: unknown): value is BackupProgress {
  return typeof value === 'object' && value !== null && 'phase' in value;
}
