import { settleWithin, type CleanupScope } from '../testkit/fixtures.js';

/**
 * The cleanups of one chaos case (what testkit's Stack and fixtures register through
 * `after()`), run newest first when the case ends. Unlike a test context it runs every
 * cleanup even when one fails, and bounds each one: a case that broke something must still
 * unmount its tmpfs, stop its processes and remove its folders.
 */
export class CaseScope implements CleanupScope {
  private readonly cleanups: { fn: () => unknown; label: string }[] = [];

  constructor(private readonly boundMs = 60_000) {}

  after(fn: () => unknown, label = 'cleanup'): void {
    this.cleanups.push({ fn, label });
  }

  /** Runs every cleanup, newest first; returns what failed, in words. */
  async run(): Promise<string[]> {
    const problems: string[] = [];
    while (this.cleanups.length > 0) {
      const { fn, label } = this.cleanups.pop() as { fn: () => unknown; label: string };
      try {
        await settleWithin(Promise.resolve().then(fn), this.boundMs, `did not finish within ${this.boundMs} ms`);
      } catch (err) {
        problems.push(`${label}: ${(err as Error).message}`);
      }
    }
    return problems;
  }
}
