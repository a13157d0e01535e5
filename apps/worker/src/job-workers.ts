import { UnrecoverableError, Worker, type Job } from 'bullmq';
import {
  BACKUP_JOB,
  redisConnectionOptions,
  QUEUES,
  VERIFY_JOB,
  COPY_JOB,
  type BackupJobData,
  type BackupOutcome,
  type BackupQueueData,
  type BackupQueueResult,
  type ControlJobData,
  type CopyJobData,
  type CopyOutcome,
  type VerificationRecord,
  type VerifyJobData,
} from '@chango/contracts';
import type { Logger } from '@chango/telemetry';
import type { WorkerConfig } from './config.js';
import type { ControlAnswer } from './control-jobs.js';

/** The backup queue's jobs: name → what it carries and what it answers. */
export interface BackupQueueJobs {
  [BACKUP_JOB]: { data: BackupJobData; result: BackupOutcome };
  [VERIFY_JOB]: { data: VerifyJobData; result: VerificationRecord };
  [COPY_JOB]: { data: CopyJobData; result: CopyOutcome };
}
type JobName = keyof BackupQueueJobs;
type NamedJob<N extends JobName> = Job<BackupQueueJobs[N]['data'], BackupQueueJobs[N]['result'], N>;
type AnyBackupQueueJob = Job<BackupQueueData, BackupQueueResult, string>;

/** One handler per job name of the backup queue: the table the worker dispatches by. */
export type BackupQueueHandlers = { [N in JobName]: (job: NamedJob<N>, token: string | undefined) => Promise<BackupQueueJobs[N]['result']> };
export type ControlHandler = (job: Job<ControlJobData, ControlAnswer>) => Promise<ControlAnswer>;

function isNamed<N extends JobName>(job: AnyBackupQueueJob, name: N): job is NamedJob<N> {
  return job.name === name;
}

/**
 * The two BullMQ workers of a master host: backups and drills (one at a time,
 * long-running, taken over after a crash) and the api's control requests
 * (short, a few at once). Both start paused: only the leader takes jobs
 * (Leadership resumes and pauses them).
 */
export class JobWorkers {
  private readonly backups: Worker<BackupQueueData, BackupQueueResult>;
  private readonly control: Worker<ControlJobData, ControlAnswer>;

  constructor(config: WorkerConfig, handlers: { backupQueue: BackupQueueHandlers; control: ControlHandler }, log: Logger) {
    const connection = { ...redisConnectionOptions(config), maxRetriesPerRequest: null };
    this.backups = new Worker(QUEUES.backup, (job, token) => dispatch(job, token, handlers.backupQueue), {
      connection,
      prefix: config.queuePrefix,
      autorun: false,
      concurrency: 1,
      lockDuration: config.lockDurationMs,
      stalledInterval: config.lockDurationMs,
      // A job whose worker died is taken over; the job itself gives up (in words) after CHANGO_BACKUP_ATTEMPTS deaths,
      // before BullMQ's own limit (which fails it as "job stalled more than allowable limit") is reached.
      maxStalledCount: config.retry.attempts + 1,
    });
    this.control = new Worker(QUEUES.control, handlers.control, { connection, prefix: config.queuePrefix, autorun: false, concurrency: 4 });
    for (const worker of [this.backups, this.control] as Worker[]) {
      worker.on('failed', (job, err) => log.error({ queue: worker.name, jobId: job?.id, job: job?.name, attempts: job?.attemptsMade, reason: err.message }, 'job failed'));
      worker.on('error', (err) => log.error({ queue: worker.name, err: err.message }, 'queue connection error'));
    }
  }

  /** Starts (or resumes) taking jobs: BullMQ's resume runs a worker made with autorun: false; it reports errors as 'error' events, it never throws. */
  resume(): void {
    for (const worker of [this.backups, this.control] as Worker[]) void worker.resume();
  }

  /** Stops taking new jobs; the one in hand goes on (it checks the lease before it commits). */
  async pause(): Promise<void> {
    await Promise.all([this.backups.pause(true), this.control.pause(true)]);
  }

  /** Waits for the jobs in hand (stopped by the JobGuard first) and closes the connections. */
  async close(): Promise<void> {
    await Promise.all([this.backups.close(), this.control.close()]);
  }
}

function dispatch(job: AnyBackupQueueJob, token: string | undefined, handlers: BackupQueueHandlers): Promise<BackupQueueResult> {
  if (isNamed(job, VERIFY_JOB)) return handlers[VERIFY_JOB](job, token);
  if (isNamed(job, BACKUP_JOB)) return handlers[BACKUP_JOB](job, token);
  if (isNamed(job, COPY_JOB)) return handlers[COPY_JOB](job, token);
  // Nothing of ours queues other names; one from elsewhere fails in words instead of being run as a backup.
  return Promise.reject(new UnrecoverableError(`unknown job name "${job.name}" on the ${QUEUES.backup} queue: this worker runs ${BACKUP_JOB}, ${VERIFY_JOB} and ${COPY_JOB} jobs`));
}
