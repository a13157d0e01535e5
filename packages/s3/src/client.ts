import type * as http from 'node:http';
import { Client } from 'minio';
import type { BackupDestination } from '@chango/contracts';
import { createBoundedAgent } from './bounded-agent.js';
import { DEFAULT_S3_TIMEOUTS } from './timeouts.js';

/**
 * Smallest multipart part size: S3's minimum, 5 MiB. minio-js buffers whole
 * parts (and would pick 528 MiB parts for a stream of unknown size); our
 * archives have a known size, for which it picks max(this, size / 10 000).
 * Measured on 1 GiB of state: the worker's RSS while uploading is ≈ 170 MiB
 * with 5 MiB parts against ≈ 195 MiB with 8 MiB (bench/README.md). More parts
 * cost a few more requests; archives up to 48 GiB keep 5 MiB parts.
 */
export const UPLOAD_PART_BYTES = 5 * 1024 * 1024;

export type S3Location = Pick<BackupDestination, 'endpoint' | 'region' | 'accessKey' | 'secretKey' | 'addressing'>;

/**
 * A SigV4 client for the destination's endpoint, path-style unless
 * virtual-hosted is asked for. Every request goes through `agent` (minio-js
 * passes it to http.request as is, keep-alive included); without one, a
 * BoundedAgent with the default connect and idle bounds is made, so no client
 * of ours ever runs on Node's unbounded global agent.
 */
export function createS3Client(location: S3Location, partSize = UPLOAD_PART_BYTES, agent?: http.Agent): Client {
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
    transportAgent: agent ?? createBoundedAgent(location.endpoint, DEFAULT_S3_TIMEOUTS),
  });
}

/** Request headers for server-side encryption as configured (`none`: no header); SSE-KMS names its key when one is set. */
export function sseHeaders({ sse, sseKmsKeyId }: Pick<BackupDestination, 'sse' | 'sseKmsKeyId'>): Record<string, string> {
  if (sse === 'none') return {};
  if (sse === 'aws:kms' && sseKmsKeyId) return { 'x-amz-server-side-encryption': sse, 'x-amz-server-side-encryption-aws-kms-key-id': sseKmsKeyId };
  return { 'x-amz-server-side-encryption': sse };
}
