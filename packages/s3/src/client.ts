import { Client } from 'minio';
import type { BackupDestination } from '@chango/contracts';

/**
 * Smallest multipart part size. minio-js buffers a whole part (and would pick
 * 528 MiB parts for a stream of unknown size); our archives have a known size,
 * for which it picks max(this, size / 10 000). 8 MiB keeps the worker's peak
 * RSS under 200 MiB (bench/README.md) and still allows 78 GiB archives.
 */
export const UPLOAD_PART_BYTES = 8 * 1024 * 1024;

export type S3Location = Pick<BackupDestination, 'endpoint' | 'region' | 'accessKey' | 'secretKey' | 'addressing'>;

/** A SigV4 client for the destination's endpoint, path-style unless virtual-hosted is asked for. */
export function createS3Client(location: S3Location, partSize = UPLOAD_PART_BYTES): Client {
  const url = new URL(location.endpoint);
  const useSSL = url.protocol === 'https:';
  return new Client({
    endPoint: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : useSSL ? 443 : 80,
    useSSL,
    accessKey: location.accessKey,
    secretKey: location.secretKey,
    region: location.region,
    pathStyle: location.addressing !== 'virtual-hosted',
    partSize,
  });
}

/** Request headers for server-side encryption as configured (`none`: no header). */
export function sseHeaders(sse: BackupDestination['sse']): Record<string, string> {
  return sse === 'none' ? {} : { 'x-amz-server-side-encryption': sse };
}
