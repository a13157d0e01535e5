import { performance } from 'node:perf_hooks';

/**
 * Lets many commits run at once but gives one caller (the checkpoint) a moment
 * in which no commit is in flight. A commit spans up to three stores, so this
 * is what makes a checkpoint one point in time across kms, iam and metadata.
 *
 * Writer-preferring: once `exclusive` is asked for, new commits wait, so the
 * checkpoint cannot be starved by a steady stream of writes.
 */
export class WriteGate {
  private inFlight = 0;
  private closedUntil: Promise<void> | null = null;
  private onDrained: (() => void) | null = null;

  async shared<T>(work: () => Promise<T>): Promise<T> {
    while (this.closedUntil) await this.closedUntil;
    this.inFlight++;
    try {
      return await work();
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.onDrained?.();
    }
  }

  /**
   * Closes the gate, waits for commits in flight, runs `work` (synchronous, so
   * the gate stays closed for as short as possible), reopens. `pauseMs` is how
   * long new commits were held back.
   */
  async exclusive<T>(work: () => T): Promise<{ value: T; pauseMs: number }> {
    while (this.closedUntil) await this.closedUntil;
    const closedAt = performance.now();
    let reopen!: () => void;
    this.closedUntil = new Promise<void>((resolve) => (reopen = resolve));
    try {
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.onDrained = resolve));
      this.onDrained = null;
      const value = work();
      return { value, pauseMs: performance.now() - closedAt };
    } finally {
      this.closedUntil = null;
      reopen();
    }
  }
}
