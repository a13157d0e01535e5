import { randomUUID } from 'node:crypto';
import { Job } from 'bullmq';
import { BACKUP_JOB, backupJobOptions, redisKeys, type BackupJobData, type BackupStatus, type ControlJobData, type RetryPolicy, type VerifyJobData, type VERIFY_JOB } from '@chango/contracts';
import { HttpError } from './http-errors.js';
import { viewJob, type BackupQueueJob, type JobView } from './job-view.js';
import type { RedisLink } from './redis-link.js';
import { aliveWorkers, readStatus } from './status.js';
import { askWorker } from './worker-client.js';

/** Every state a job of the backup queue can be listed in. */
const LISTED_STATES = ['active', 'waiting', 'delayed', 'prioritized', 'completed', 'failed'] as const;

/**
 * What the routes may do with Redis, and nothing more: queue a backup or a
 * drill, look jobs up, read the status, ask the worker. Each operation is
 * bounded inside (a Redis that does not answer is a 503 in words).
 */
export class BackupJobs {
  constructor(
    private readonly link: RedisLink,
    private readonly retry: RetryPolicy,
  ) {}

  /**
   * Adds a job to the backup queue. While one with the same deduplication id
   * waits or runs, BullMQ hands back that one instead (alreadyRunning).
   */
  async enqueue(name: typeof BACKUP_JOB, data: BackupJobData, deduplicationId: string): Promise<{ jobId: string; alreadyRunning: boolean }>;
  async enqueue(name: typeof VERIFY_JOB, data: VerifyJobData, deduplicationId: string): Promise<{ jobId: string; alreadyRunning: boolean }>;
  async enqueue(name: string, data: BackupJobData | VerifyJobData, deduplicationId: string): Promise<{ jobId: string; alreadyRunning: boolean }> {
    const requestedId = randomUUID();
    const added = await this.link.bounded(() => this.link.backup.add(name, data, { jobId: requestedId, deduplication: { id: deduplicationId }, ...backupJobOptions(this.retry) }));
    const jobId = added.id ?? requestedId;
    return { jobId, alreadyRunning: jobId !== requestedId };
  }

  /** The id of the backup running now, if any (a scheduled one, say). */
  async runningBackupId(): Promise<string | undefined> {
    const active = await this.link.bounded(() => this.link.backup.getActive());
    return active.find((j) => j?.name === BACKUP_JOB)?.id;
  }

  /** Waits until the job ends, at most `waitMs` (it may still run after); a job that failed ends the wait too. */
  async waitForEnd(jobId: string, waitMs: number): Promise<void> {
    const job = await this.load(jobId);
    if (!job) throw new HttpError(500, 'internal', `job ${jobId} vanished right after it was queued`);
    // Failed, or still running past the bound: the job's view tells which.
    await job.waitUntilFinished(this.link.backupEvents, waitMs).catch(() => undefined);
  }

  /** The job as the api shows it; undefined when there is none by that id (never queued, or expired from the history). */
  async view(jobId: string): Promise<JobView | undefined> {
    const job = await this.load(jobId);
    return job && this.link.bounded(() => viewJob(job, this.link.backup));
  }

  /** The newest `limit` jobs of every state, newest first. */
  async list(limit: number): Promise<JobView[]> {
    const jobs = await this.link.bounded(() => this.link.backup.getJobs([...LISTED_STATES], 0, limit - 1));
    const newest = (jobs as (BackupQueueJob | undefined)[]).filter((j): j is BackupQueueJob => Boolean(j)).sort((a, b) => b.timestamp - a.timestamp).slice(0, limit);
    return this.link.bounded(() => Promise.all(newest.map((job) => viewJob(job, this.link.backup))));
  }

  async status(): Promise<BackupStatus> {
    return this.link.bounded(() => readStatus(this.link));
  }

  /** Node ids of the workers whose heartbeat is fresh. */
  async aliveWorkers(): Promise<string[]> {
    return this.link.bounded(() => aliveWorkers(this.link));
  }

  /** The public key secrets for the worker are sealed to; 503 while no worker has published one. */
  async workerTransportKey(): Promise<string> {
    const key = await this.link.bounded(() => this.link.redis.get(redisKeys(this.link.prefix).transportKey));
    if (!key) throw new HttpError(503, 'no_worker', 'no chango worker has registered yet: start chango-worker on the master host');
    return key;
  }

  /** Asks the worker (which alone holds the stores) and waits for its answer, at most `waitMs`. */
  async askWorker<T>(request: ControlJobData, waitMs: number): Promise<T> {
    return askWorker<T>(this.link, request, waitMs);
  }

  private async load(jobId: string): Promise<BackupQueueJob | undefined> {
    return this.link.bounded(() => Job.fromId(this.link.backup, jobId));
  }
}
