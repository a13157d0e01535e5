import { DEFAULT_QUEUE_PREFIX, integerSetting } from '@chango/contracts';

export interface ApiConfig {
  host: string;
  port: number;
  redisUrl: string;
  queuePrefix: string;
  tokensFile: string;
  /** How long `POST …/run` waits for the backup before answering 202 with the job's status URL. */
  runWaitMs: number;
  /** How long a request waits for the worker to answer a control job (config, listing). */
  workerAnswerMs: number;
  /** Attempts per backup job; transient S3/network failures are retried with exponential backoff. */
  backupAttempts: number;
  backupBackoffMs: number;
  /** Largest request body accepted (bytes). */
  bodyLimitBytes: number;
}

/** Reads the api's settings from the environment. There is no default tokens file: no token, no start. */
export function readApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const tokensFile = env.CHANGO_API_TOKENS_FILE;
  if (!tokensFile) {
    throw new Error('CHANGO_API_TOKENS_FILE is not set: the api does not start without a tokens file (make a token with: chango-backup token new --name NAME --role admin)');
  }
  return {
    host: env.HOST || '127.0.0.1',
    port: integerSetting(env, 'PORT', 8080, 0, 65535),
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    queuePrefix: env.CHANGO_QUEUE_PREFIX || DEFAULT_QUEUE_PREFIX,
    tokensFile,
    runWaitMs: integerSetting(env, 'CHANGO_RUN_WAIT_MS', 15 * 60_000, 0, 24 * 3_600_000),
    workerAnswerMs: integerSetting(env, 'CHANGO_WORKER_ANSWER_MS', 10_000, 100, 600_000),
    backupAttempts: integerSetting(env, 'CHANGO_BACKUP_ATTEMPTS', 3, 1, 20),
    backupBackoffMs: integerSetting(env, 'CHANGO_BACKUP_BACKOFF_MS', 10_000, 10, 3_600_000),
    bodyLimitBytes: integerSetting(env, 'CHANGO_BODY_LIMIT_BYTES', 64 * 1024, 1024, 10 * 1024 * 1024),
  };
}
