import type { BackupDestination } from '@chango/contracts';

/** Where an S3 destination is and who signs for it: a local RGW's target, or made-up values for a fixture. */
export interface S3Location {
  endpoint: string;
  region: string;
  accessKey: string;
  secretKey: string;
}

/**
 * A destination config for `bucket` at `target`, as the worker holds it: path-style, no
 * schedule, retention, encryption or copy; `overrides` replace fields (sse, retention, an
 * endpoint through a fault proxy).
 */
export function destinationAt(target: S3Location, bucket: string, prefix: string, overrides: Partial<BackupDestination> = {}): BackupDestination {
  return {
    endpoint: target.endpoint,
    region: target.region,
    bucket,
    prefix,
    accessKey: target.accessKey,
    secretKey: target.secretKey,
    schedule: null,
    timezone: 'UTC',
    sse: 'AES256',
    retention: null,
    addressing: 'path',
    encryption: null,
    copy: null,
    ...overrides,
  };
}

