import { isStateError } from '@chango/state';

/** One line on stderr that says what went wrong, exit status 1. Stack traces only for bugs. */
export function reportAndExit(err: unknown): never {
  const message = isStateError(err) ? err.message : err instanceof Error ? err.stack ?? err.message : String(err);
  process.stderr.write(`chango-backup: ${message}\n`);
  process.exit(1);
}
