import { execFile } from 'node:child_process';
import { SAFETY_NET_MS } from './liveness.js';
import type { S3Target } from './local-rgw.js';

/**
 * awscli against an S3 target: a client independent of minio-js and of the
 * service's own S3 code, to read back what the service wrote (Object Lock
 * retention, versions) and to try what an attacker would (deleting a locked
 * version). Debian's awscli at /usr/bin/aws (scripts/debian-deps.sh installs
 * it): a pyenv shim named `aws` may come first on PATH.
 *
 * The credentials go in the child's environment only — never on its command
 * line (visible in `ps`) and never in what this returns or throws. No config
 * or credentials file of the user is read.
 */
export const AWS_CLI = '/usr/bin/aws';

export interface AwsResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `aws s3api <args…> --endpoint-url <target>`; resolves with the exit code whatever it is. Bounded by the safety net. */
export function awsS3api(target: S3Target, args: readonly string[]): Promise<AwsResult> {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    AWS_ACCESS_KEY_ID: target.accessKey,
    AWS_SECRET_ACCESS_KEY: target.secretKey,
    AWS_DEFAULT_REGION: target.region,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
  };
  return new Promise((resolve, reject) => {
    execFile(AWS_CLI, ['s3api', ...args, '--endpoint-url', target.endpoint, '--output', 'json'], { env, timeout: SAFETY_NET_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      if (err && typeof err.code !== 'number') {
        reject(new Error(`${AWS_CLI} s3api ${args[0] ?? ''} did not run: ${err.message.replaceAll(target.secretKey, '<secret>')}`));
        return;
      }
      resolve({ code, stdout: stdout.replaceAll(target.secretKey, '<secret>'), stderr: stderr.replaceAll(target.secretKey, '<secret>') });
    });
  });
}

/** Like awsS3api, for a command that must succeed: its JSON answer (an empty answer is `{}`). */
export async function awsS3apiJson<T = Record<string, unknown>>(target: S3Target, args: readonly string[]): Promise<T> {
  const result = await awsS3api(target, args);
  if (result.code !== 0) throw new Error(`aws s3api ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  return (result.stdout.trim() ? JSON.parse(result.stdout) : {}) as T;
}

/** What `list-object-versions` says of one prefix: versions and delete markers, by key. */
export interface ListedVersions {
  Versions?: { Key: string; VersionId: string; IsLatest: boolean; LastModified: string }[];
  DeleteMarkers?: { Key: string; VersionId: string; IsLatest: boolean }[];
}

export function listObjectVersions(target: S3Target, bucket: string, prefix: string): Promise<ListedVersions> {
  return awsS3apiJson<ListedVersions>(target, ['list-object-versions', '--bucket', bucket, '--prefix', prefix]);
}
