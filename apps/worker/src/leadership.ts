import type { Logger } from '@chango/telemetry';
import type { BackupSchedule } from './backup-schedule.js';
import type { DestinationReplica } from './destination-replica.js';
import type { JobWorkers } from './job-workers.js';
import type { LeaderLease } from './leader-lease.js';

/**
 * What being the leader means on this host, in one place:
 * - gained: follow the newest destination first, then take jobs and set the schedule;
 * - lost: stop taking jobs (the one in hand checks the lease before it commits);
 * - every renewal, and every destination saved here or adopted from another
 *   host: keep BullMQ's schedule equal to the stored one (Redis is not the
 *   source of truth: an emptied Redis gets its schedule back within a renewal).
 * Followers only follow the destination (DestinationReplica).
 */
export class Leadership {
  constructor(
    private readonly lease: LeaderLease,
    private readonly parts: { replica: DestinationReplica; schedule: BackupSchedule; jobs: JobWorkers; log: Logger },
  ) {
    parts.replica.onChange(() => this.reconcileSchedule());
  }

  get isLeader(): boolean {
    return this.lease.isLeader;
  }

  /** Tries for the lease now (a restarted worker takes its host's lease back at once) and keeps trying. */
  async start(): Promise<void> {
    const { replica, jobs } = this.parts;
    await this.lease.start({
      // sync() and reconcileSchedule() never throw, so a new leader always starts taking jobs.
      gained: async () => {
        await replica.sync();
        jobs.resume();
        await this.reconcileSchedule();
      },
      lost: () => jobs.pause(),
      renewed: () => this.reconcileSchedule(),
    });
  }

  /** Hands the lease over at once (a clean stop), instead of after its TTL. */
  async stop(): Promise<void> {
    await this.lease.stop();
  }

  /** On the leader only; never throws: a Redis blip is logged, and the next renewal tries again. */
  private async reconcileSchedule(): Promise<void> {
    if (!this.lease.isLeader) return;
    try {
      await this.parts.schedule.reconcile(this.parts.replica.destination);
    } catch (err) {
      this.parts.log.error({ err: (err as Error).message }, 'could not bring the backup schedule in line with the stored one; retrying at the next lease renewal');
    }
  }
}
