import { Client } from 'minio';
import type { BackupDestination } from '@chango/contracts';

/**
 * Multipart part size. minio-js would pick 528 MiB parts for a stream of
 * unknown size (it assumes 5 TiB) and buffer a whole part: 16 MiB keeps the
 * worker near 200 MiB RSS whatever the archive size (DESIGN.md, measured).
 */
export const UPLOAD_PART_BYTES = 16 * 1024 * 1024;

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
