import type { Queue } from 'bullmq';
import { BACKUP_JOB, type BackupQueueData } from '@chango/contracts';
import type { StartedBackup } from './backup-job.js';

/** At most this many waiting or delayed jobs are read: ticks covered by a backup under way complete at once, so few ever wait. */
const READ_AT_MOST = 100;

/**
 * A backup job other than `exceptJobId` that has started (an attempt ran) and
 * is not over: waiting for its next attempt after a backoff, or handed back by
 * a worker that stopped. The next occurrence of the schedule (delayed, never
 * started) is not one.
 */
export async function backupUnderWay(queue: Queue<BackupQueueData>, exceptJobId: string): Promise<StartedBackup | undefined> {
  const jobs = await queue.getJobs(['delayed', 'waiting', 'prioritized'], 0, READ_AT_MOST - 1);
  const found = jobs.find((j) => j && j.id !== exceptJobId && j.name === BACKUP_JOB && ((j.attemptsStarted ?? 0) > 0 || Boolean(j.processedOn)));
  const data = found?.data;
  if (!found || !data || !('trigger' in data) || 'sha256' in data) return undefined;
  return { jobId: found.id ?? '', trigger: data.trigger, attemptsMade: found.attemptsMade, attempts: found.opts.attempts ?? 1, key: data.attempt?.key };
}
