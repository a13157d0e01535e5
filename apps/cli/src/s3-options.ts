import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { BackupDestinationSchema, fieldErrors, type BackupDestination } from '@chango/contracts';
import { BackupBucket, s3TimeoutsFromEnv } from '@chango/s3';

/**
 * Where `list`, `inspect`, `restore` and `verify` find the backups: flags, or
 * the CHANGO_S3_* variables (flags win). These commands run on a fresh master
 * where no worker and no api are up, so they talk to S3 directly. The secret
 * key is never a flag (it would show in `ps` and shell history): it comes from
 * CHANGO_S3_SECRET_KEY or a file.
 */
export interface S3Flags {
  endpoint?: string;
  region?: string;
  bucket?: string;
  prefix?: string;
  accessKey?: string;
  secretKeyFile?: string;
  addressing?: string;
}

const FLAG_FOR_FIELD: Record<string, string> = {
  endpoint: '--endpoint / CHANGO_S3_ENDPOINT',
  region: '--region / CHANGO_S3_REGION',
  bucket: '--bucket / CHANGO_S3_BUCKET',
  prefix: '--prefix / CHANGO_S3_PREFIX',
  accessKey: '--access-key / CHANGO_S3_ACCESS_KEY',
  secretKey: 'CHANGO_S3_SECRET_KEY / --secret-key-file / CHANGO_S3_SECRET_KEY_FILE',
  addressing: '--addressing',
};

export function addS3Options(command: Command): Command {
  return command
    .option('--endpoint <url>', 'S3 endpoint, e.g. http://shannonstore:8080 (env CHANGO_S3_ENDPOINT)')
    .option('--region <region>', 'SigV4 region (env CHANGO_S3_REGION; default us-east-1)')
    .option('--bucket <name>', 'bucket holding the backups (env CHANGO_S3_BUCKET)')
    .option('--prefix <prefix>', "key prefix, e.g. 'prod/' (env CHANGO_S3_PREFIX; default none)")
    .option('--access-key <id>', 'S3 access key (env CHANGO_S3_ACCESS_KEY)')
    .option('--secret-key-file <file>', 'file holding the S3 secret key (or env CHANGO_S3_SECRET_KEY / CHANGO_S3_SECRET_KEY_FILE)')
    .option('--addressing <style>', 'path or virtual-hosted (default path)');
}

/** The destination from flags and environment, validated with the same schema the api uses; errors name the flag. */
export function destinationFromFlags(flags: S3Flags, processEnv: NodeJS.ProcessEnv = process.env): BackupDestination {
  // An empty variable counts as unset (as `VAR= cmd` means in shells).
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(processEnv).filter(([, value]) => value !== ''));
  const secretFile = flags.secretKeyFile ?? env.CHANGO_S3_SECRET_KEY_FILE;
  let secretKey = env.CHANGO_S3_SECRET_KEY;
  if (secretFile) {
    try {
      secretKey = readFileSync(secretFile, 'utf8').trim();
    } catch (err) {
      throw new CliError(`cannot read the S3 secret key file ${secretFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const candidate = {
    endpoint: flags.endpoint ?? env.CHANGO_S3_ENDPOINT,
    region: flags.region ?? env.CHANGO_S3_REGION ?? 'us-east-1',
    bucket: flags.bucket ?? env.CHANGO_S3_BUCKET,
    prefix: flags.prefix ?? env.CHANGO_S3_PREFIX ?? '',
    accessKey: flags.accessKey ?? env.CHANGO_S3_ACCESS_KEY,
    secretKey,
    schedule: null,
    timezone: 'UTC',
    // Reads carry no SSE header (SSE-S3 objects decrypt transparently).
    sse: 'none',
    retention: null,
    addressing: flags.addressing ?? 'path',
  };
  const parsed = BackupDestinationSchema.safeParse(candidate);
  if (!parsed.success) {
    const problems = fieldErrors(parsed.error).map((f) => {
      const value = (candidate as Record<string, unknown>)[f.field];
      return value === undefined ? `${FLAG_FOR_FIELD[f.field] ?? f.field} is required` : `${FLAG_FOR_FIELD[f.field] ?? f.field} ${f.message}`;
    });
    throw new CliError(`the S3 destination is incomplete or invalid: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/**
 * The bucket at the destination from flags and environment, every call bounded
 * by CHANGO_S3_CONNECT_TIMEOUT_MS, CHANGO_S3_IDLE_TIMEOUT_MS,
 * CHANGO_S3_CALL_TIMEOUT_MS and CHANGO_S3_MIN_BYTES_PER_SEC (a bad value names its variable).
 */
export function bucketFromFlags(flags: S3Flags, processEnv: NodeJS.ProcessEnv = process.env): BackupBucket {
  const destination = destinationFromFlags(flags, processEnv);
  let timeouts;
  try {
    timeouts = s3TimeoutsFromEnv(processEnv);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  return new BackupBucket(destination, { timeouts });
}

/** An error whose message is the whole story: printed as one line, no stack. */
export class CliError extends Error {}
