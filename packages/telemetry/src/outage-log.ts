import type { Logger } from './logger.js';

/**
 * A failure that repeats every few seconds while it lasts (Redis down under
 * a heartbeat, a lease, a replica round) is logged once when it starts and
 * once when it ends: an hour's outage is two lines, not seven hundred.
 */
export class OutageLog {
  private down = false;

  constructor(
    private readonly log: Logger,
    private readonly words: { failed: string; recovered: string },
  ) {}

  /** Logs `err` at error level if this is the first failure since the last success. */
  failed(err: unknown): void {
    if (!this.down) this.log.error({ err: err instanceof Error ? err.message : String(err) }, this.words.failed);
    this.down = true;
  }

  /** Logs the recovery, once, if a failure was logged. */
  succeeded(): void {
    if (this.down) this.log.info(this.words.recovered);
    this.down = false;
  }
}
