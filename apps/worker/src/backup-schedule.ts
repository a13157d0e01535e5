import type { Queue } from 'bullmq';
import { BACKUP_JOB, BACKUP_SCHEDULER_ID, backupJobOptions, type BackupDestination, type BackupQueueData, type RetryPolicy } from '@chango/contracts';
import type { Logger } from '@chango/telemetry';

/**
 * Keeps BullMQ's job scheduler equal to the stored destination's schedule.
 * The leader calls it when it takes over, after every save and on every lease
 * renewal: Redis is not the source of truth, so an emptied Redis (or a
 * restored master) gets its schedule back within one renewal.
 */
export class BackupSchedule {
  constructor(
    /** The backup queue (backups and drills); the scheduler adds backups. */
    private readonly queue: Queue<BackupQueueData>,
    private readonly retry: RetryPolicy,
    private readonly log: Logger,
  ) {}

  async reconcile(destination: BackupDestination | undefined): Promise<void> {
    const wanted = destination?.schedule ? { pattern: destination.schedule, tz: destination.timezone } : null;
    const current = await this.queue.getJobScheduler(BACKUP_SCHEDULER_ID);
    if (!wanted) {
      if (current) {
        await this.queue.removeJobScheduler(BACKUP_SCHEDULER_ID);
        this.log.info({ was: current.pattern }, 'backup schedule removed');
      }
      return;
    }
    if (current && current.pattern === wanted.pattern && (current.tz ?? 'UTC') === wanted.tz && current.next !== undefined) return;
    await this.queue.upsertJobScheduler(BACKUP_SCHEDULER_ID, wanted, {
      name: BACKUP_JOB,
      data: { trigger: 'schedule', requestedBy: 'schedule' },
      opts: backupJobOptions(this.retry),
    });
    const after = await this.queue.getJobScheduler(BACKUP_SCHEDULER_ID);
    this.log.info({ schedule: wanted.pattern, timezone: wanted.tz, nextRunAt: after?.next ? new Date(after.next).toISOString() : null, restored: !current }, 'backup schedule set');
  }
}
