import { formatDuration, type Logger } from '@chango/telemetry';

export type InterruptionCause = 'deadline' | 'stopping' | 'fault';

/** Why a job was stopped from outside its own code: its deadline passed, the worker is stopping, or a fault escaped it. */
export class JobInterrupted extends Error {
  override readonly name = 'JobInterrupted';
  constructor(
    readonly kind: InterruptionCause,
    message: string,
  ) {
    super(message);
  }
}

/** One guarded job: its signal fires at its deadline, when the worker stops, or on a fault that escaped it. */
export interface GuardedJob {
  readonly signal: AbortSignal;
  /**
   * Settles like `work`, but at the latest GRACE after the signal fired, with
   * the signal's reason: a step that does not notice the signal (a native call)
   * cannot keep the job — and the backup slot — past its deadline. Whatever
   * `work` still does then finishes in the background and cleans up after itself.
   */
  bound<T>(work: Promise<T>): Promise<T>;
  /** The reason the job was interrupted, if it was; otherwise `err` as it is. */
  explain(err: unknown): unknown;
  end(): void;
}

/**
 * The watchdog of the jobs this worker runs. A job begins with a deadline;
 * past it, or when the worker stops (SIGTERM), its AbortSignal fires and every
 * step of the job (checkpoint, archive pipeline, S3 calls) stops. No job
 * can hold the backup slot forever, and a stopping worker ends within a bound.
 */
export class JobGuard {
  private readonly running = new Map<string, AbortController>();

  constructor(
    /** How long an interrupted job may take to wind down (remove its files, abort its upload) before it is failed anyway. */
    private readonly graceMs: number,
    private readonly log: Logger,
  ) {}

  get busy(): boolean {
    return this.running.size > 0;
  }

  /** `describe` says where the job is (phase, bytes) for the deadline's message. */
  begin(jobId: string, deadlineMs: number, describe: () => string): GuardedJob {
    const controller = new AbortController();
    this.running.set(jobId, controller);
    const timer = setTimeout(() => {
      const reason = new JobInterrupted('deadline', `did not finish within its deadline of ${formatDuration(deadlineMs)} (${describe()}); it was stopped and what it had written was removed`);
      this.log.error({ jobId, deadlineMs, reason: reason.message }, 'job deadline passed: stopping it');
      controller.abort(reason);
    }, deadlineMs);
    const { signal } = controller;
    const graceMs = this.graceMs;
    return {
      signal,
      bound<T>(work: Promise<T>): Promise<T> {
        return new Promise<T>((resolve, reject) => {
          let timer: NodeJS.Timeout | undefined;
          const giveUp = () => (timer = setTimeout(() => reject(signal.reason), graceMs));
          const settled = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', giveUp);
          };
          work.then(
            (value) => (settled(), resolve(value)),
            (err: unknown) => (settled(), reject(err)),
          );
          if (signal.aborted) giveUp();
          else signal.addEventListener('abort', giveUp, { once: true });
        });
      },
      explain(err: unknown): unknown {
        // A step that noticed the signal throws its own AbortError; the reason is what an operator needs to read.
        return signal.aborted && signal.reason instanceof JobInterrupted ? signal.reason : err;
      },
      end: () => {
        clearTimeout(timer);
        if (this.running.get(jobId) === controller) this.running.delete(jobId);
      },
    };
  }

  /** The worker is stopping: every job in hand stops now and is handed back (see the job handlers). */
  stopAll(why: string): void {
    for (const controller of this.running.values()) controller.abort(new JobInterrupted('stopping', why));
  }

  /**
   * An error escaped a job's own handling (an unhandled rejection from a
   * library): fail the jobs in hand with it, rather than let it end the process
   * and strand them.
   */
  failAll(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    for (const controller of this.running.values()) controller.abort(new JobInterrupted('fault', `an error escaped the job's own handling: ${message}`));
  }
}
