import type { Job } from 'bullmq';
import type { BackupPhase, BackupProgress } from '@chango/contracts';

const PROGRESS_EVERY_MS = 500;

/** What each phase is doing, for messages ("ran out of space while writing the checkpoint"). */
const DOING: Record<BackupPhase, string> = {
  queued: 'starting',
  checkpoint: 'writing the checkpoint',
  upload: 'archiving the checkpoint into the upload',
  commit: 'committing (reading back, writing the sidecar)',
  done: 'applying retention',
  verify: 'running the restore drill',
  copy: 'copying the backup to the second target',
};

/**
 * A job's progress as the api shows it (phase, bytes), reported to BullMQ and
 * remembered here, so a deadline or a failure can say where the job was.
 */
export class ProgressReporter {
  private current: BackupProgress = { phase: 'queued', bytesDone: 0, bytesExpected: null };

  constructor(private readonly job: Job) {}

  async report(phase: BackupPhase, bytesDone = 0, bytesExpected: number | null = null): Promise<void> {
    this.current = { phase, bytesDone, bytesExpected };
    await this.job.updateProgress(this.current);
  }

  /** Runs one phase's work, reporting `measure()` — [bytes done, bytes expected] — every PROGRESS_EVERY_MS while it lasts. */
  async while<T>(phase: BackupPhase, measure: () => [number, number | null], work: () => Promise<T>): Promise<T> {
    await this.report(phase, 0, measure()[1]);
    const ticker = setInterval(() => {
      const [bytesDone, bytesExpected] = measure();
      this.current = { phase, bytesDone, bytesExpected };
      void this.job.updateProgress(this.current).catch(() => undefined);
    }, PROGRESS_EVERY_MS);
    try {
      return await work();
    } finally {
      clearInterval(ticker);
    }
  }

  doing(): string {
    return DOING[this.current.phase];
  }

  /** "phase upload, 42074112 of 75220188 bytes" */
  describe(): string {
    return describeProgress(this.current);
  }

  /** Where an earlier, interrupted run of this job was last seen (the progress it left in the queue). */
  lastKnown(job: Job): string {
    const earlier = job.progress as Partial<BackupProgress> | number | undefined;
    return typeof earlier === 'object' && earlier?.phase ? describeProgress(earlier as BackupProgress) : 'an unknown phase';
  }
}

function describeProgress(progress: BackupProgress): string {
  const bytes = progress.bytesExpected !== null ? `, ${progress.bytesDone} of ${progress.bytesExpected} bytes` : progress.bytesDone > 0 ? `, ${progress.bytesDone} bytes` : '';
  return `phase ${progress.phase}${bytes}`;
}
