import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_QUEUE_PREFIX, integerSetting } from '@chango/contracts';
import { UPLOAD_PART_BYTES } from '@chango/s3';
import { DEFAULT_DATA_DIR, loadRootSecret } from '@chango/state';

/** This service's version, from the worker's package.json. */
export const SERVICE_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface WorkerConfig {
  dataDir: string;
  rootSecret: Buffer;
  /** Where checkpoints are staged while archived; stale ones are removed at start. */
  workDir: string;
  redisUrl: string;
  queuePrefix: string;
  nodeId: string;
  gzipLevel: number;
  /** Recorded in each manifest as chango.version: the Chango release this master runs. */
  changoVersion: string;
  /** Multipart part size for uploads (S3's minimum is 5 MiB). */
  partBytes: number;
  /** BullMQ job lock: a worker that dies holding a job loses it after about this long. */
  lockDurationMs: number;
}

/** Reads the worker's settings from the environment; a bad value stops the start with its name. */
export function readWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const dataDir = env.CHANGO_DATA_DIR || DEFAULT_DATA_DIR;
  return {
    dataDir,
    rootSecret: loadRootSecret(env),
    workDir: env.CHANGO_WORK_DIR || join(dataDir, '.backup-work'),
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    queuePrefix: env.CHANGO_QUEUE_PREFIX || DEFAULT_QUEUE_PREFIX,
    nodeId: env.CHANGO_NODE_ID || hostname(),
    gzipLevel: integerSetting(env, 'CHANGO_GZIP_LEVEL', 6, 1, 9),
    changoVersion: env.CHANGO_VERSION || SERVICE_VERSION,
    partBytes: integerSetting(env, 'CHANGO_S3_PART_BYTES', UPLOAD_PART_BYTES, 5 * 1024 * 1024, 1024 ** 3),
    lockDurationMs: integerSetting(env, 'CHANGO_JOB_LOCK_MS', 30_000, 1_000, 600_000),
  };
}
