import { formatDuration } from '@chango/telemetry';
import { S3_TIMEOUT_CODE, S3_TIMEOUT_SETTINGS, S3TimeoutError } from './timeouts.js';

/**
 * S3 and network failures in words an operator can act on. minio-js errors
 * carry a `code` (S3's, or Node's for sockets) and, against some servers
 * (Ceph RGW), an empty message: never let that surface as "Error: undefined".
 */
export type S3FailureKind = 'credentials' | 'permission' | 'bucket-missing' | 'sse-refused' | 'not-found' | 'unreachable' | 'transient' | 'other';

export class S3Failure extends Error {
  override readonly name = 'S3Failure';
  constructor(
    readonly kind: S3FailureKind,
    message: string,
    /** Worth retrying with backoff (network blips, 5xx, throttling, a bound hit). */
    readonly retryable: boolean,
    readonly code: string,
    /** The error it reports (an S3TimeoutError for a bound hit: its `bound` and `ms`). */
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The destination did not answer (a bound hit, or no connection at all): another call now would only wait again. */
  get destinationSilent(): boolean {
    return this.code === S3_TIMEOUT_CODE || this.kind === 'unreachable';
  }
}

export interface S3Context {
  endpoint: string;
  bucket: string;
  accessKey: string;
  /** What we were doing, e.g. "uploading prod/chango-….tar.gz". */
  operation: string;
  /** The request carried an x-amz-server-side-encryption header. */
  sse?: string;
}

const CREDENTIAL_CODES = new Set(['SignatureDoesNotMatch', 'InvalidAccessKeyId', 'InvalidToken', 'ExpiredToken', 'AuthorizationHeaderMalformed']);
const TRANSIENT_CODES = new Set(['SlowDown', 'InternalError', 'ServiceUnavailable', 'RequestTimeout', 'RequestTimeTooSkewed', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'EAI_AGAIN']);

/** A bound hit, in words: the endpoint, what we were doing, the bound's length and the variable that sets it. */
function timeoutMessage(at: string, ctx: S3Context, err: S3TimeoutError): string {
  const within = formatDuration(err.ms);
  switch (err.bound) {
    case 'connect':
      return `no connection to ${at} within ${within} while ${ctx.operation} (${err.setting}): the host does not answer, a firewall drops the packets, or the TLS handshake stalled`;
    case 'idle':
      return `${at} moved no byte for ${within} while ${ctx.operation} (${err.setting}): the network or the server stopped answering`;
    case 'call':
      return `${at} did not finish ${ctx.operation} within ${within} (${err.setting}): the server or the network is too slow, or stopped answering`;
    case 'transfer':
      return (
        `${at} did not finish ${ctx.operation} within ${within}, the deadline for ${err.transfer?.bytes ?? 'its'} bytes at ${err.transfer?.minBytesPerSec ?? 'the minimum'} B/s ` +
        `(${err.setting}; never less than ${S3_TIMEOUT_SETTINGS.callMs}): the link is slower than that, or stopped`
      );
  }
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);

export function describeS3Error(err: unknown, ctx: S3Context): S3Failure {
  if (err instanceof S3Failure) return err;
  const e = (err ?? {}) as { code?: unknown; message?: unknown; statusCode?: unknown };
  const code = typeof e.code === 'string' && e.code ? e.code : 'Unknown';
  const detail = typeof e.message === 'string' && e.message.trim() ? e.message.trim() : 'the server gave no message';
  const at = `S3 endpoint ${ctx.endpoint}`;

  if (err instanceof S3TimeoutError) {
    return new S3Failure('transient', timeoutMessage(at, ctx, err), true, S3_TIMEOUT_CODE, { cause: err });
  }

  if (CREDENTIAL_CODES.has(code)) {
    return new S3Failure(
      'credentials',
      `${at} refused the credentials of access key ${ctx.accessKey} (${code}) while ${ctx.operation}: check accessKey and secretKey in the backup config`,
      false,
      code,
    );
  }
  if (code === 'NoSuchBucket') {
    return new S3Failure('bucket-missing', `bucket "${ctx.bucket}" does not exist at ${at} (NoSuchBucket): create it first, backups go to a pre-created bucket`, false, code);
  }
  if (code === 'NoSuchKey' || code === 'NotFound') {
    return new S3Failure('not-found', `no such object at ${at}, bucket "${ctx.bucket}" while ${ctx.operation} (${code}): check the key with \`chango-backup list\``, false, code);
  }
  if (code === 'AccessDenied') {
    return new S3Failure(
      'permission',
      `${at} denied access key ${ctx.accessKey} on bucket "${ctx.bucket}" (AccessDenied) while ${ctx.operation}: it needs s3:PutObject, GetObject, ListBucket, DeleteObject and AbortMultipartUpload there`,
      false,
      code,
    );
  }
  if (ctx.sse && (code === 'InvalidRequest' || code === 'InvalidArgument' || code === 'NotImplemented' || code === 'KMS.NotFoundException')) {
    return new S3Failure(
      'sse-refused',
      `${at} refused server-side encryption ${ctx.sse} (${code}: ${detail}) while ${ctx.operation}: ` +
        'enable SSE on the server (a KMS key, or HTTPS where the server demands it), or set "sse": "none" in the backup config ' +
        '(the archive is already encrypted by chango\'s KMS; SSE is defence in depth)',
      false,
      code,
    );
  }
  if (UNREACHABLE_CODES.has(code)) {
    const why = code === 'ECONNREFUSED' ? 'connection refused: is the service running and the port right?' : `${code}: check the host name and network`;
    return new S3Failure('unreachable', `cannot reach ${at} while ${ctx.operation} (${why})`, true, code);
  }
  if (TRANSIENT_CODES.has(code) || (typeof e.statusCode === 'number' && e.statusCode >= 500)) {
    return new S3Failure('transient', `${at} failed for now while ${ctx.operation} (${code}: ${detail})`, true, code);
  }
  return new S3Failure('other', `${at} failed while ${ctx.operation} (${code}: ${detail})`, false, code);
}
