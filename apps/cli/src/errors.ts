import { isStateError } from '@chango/state';
import { RestoreError } from '@chango/restore';
import { S3Failure } from '@chango/s3';
import { ExitError } from './api-client.js';
import { CliError } from './s3-options.js';

/** One line on stderr that says what went wrong, exit status 1 (or the ExitError's own). Stack traces only for bugs. */
export function reportAndExit(err: unknown): never {
  if (err instanceof ExitError) {
    process.stderr.write(`chango-backup: ${err.message}\n`);
    process.exit(err.status);
  }
  const expected = isStateError(err) || err instanceof RestoreError || err instanceof S3Failure || err instanceof CliError;
  const message = expected ? (err as Error).message : err instanceof Error ? err.stack ?? err.message : String(err);
  process.stderr.write(`chango-backup: ${message}\n`);
  process.exit(1);
}
