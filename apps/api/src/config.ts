import { integerSetting, readSharedSettings, type SharedSettings } from '@chango/contracts';
import { chooseTokensFile, CREDENTIAL_NAMES, systemdCredential } from '@chango/security';
import { tlsFilesFromEnv, type TlsFiles } from './tls.js';

export interface ApiConfig extends SharedSettings {
  host: string;
  port: number;
  tokensFile: string;
  /** How long `POST …/run` waits for the backup before answering 202 with the job's status URL. */
  runWaitMs: number;
  /** How long a request waits for the worker to answer a control job (config, listing). */
  workerAnswerMs: number;
  /** Largest request body accepted (bytes); a Content-Length above it is refused with 413 before the body is read. */
  bodyLimitBytes: number;
  /** A client must send a request's headers within this (slow-loris bound). */
  headersTimeoutMs: number;
  /** A client must send a whole request, headers and body, within this; else 408 and the connection is closed. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Express's `trust proxy`: which proxies' X-Forwarded-For names the client ('' trusts none). */
  trustProxy: string;
  authThrottle: { limit: number; windowMs: number };
  /** TLS_CERT_FILE and TLS_KEY_FILE: HTTPS with this certificate; null: plain HTTP. */
  tls: TlsFiles | null;
}

/** Reads the api's settings from the environment. There is no default tokens file: no token, no start. */
export function readApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  // CHANGO_API_TOKENS_FILE or the systemd credential api-tokens, exactly one (chooseTokensFile says why, in words).
  const tokensFile = chooseTokensFile(env.CHANGO_API_TOKENS_FILE, systemdCredential(env, CREDENTIAL_NAMES.apiTokens));
  const headersTimeoutMs = integerSetting(env, 'CHANGO_API_HEADERS_TIMEOUT_MS', 10_000, 100, 600_000);
  const requestTimeoutMs = integerSetting(env, 'CHANGO_API_REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000);
  // Node refuses a server whose headers may take longer than the whole request.
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new Error(`CHANGO_API_HEADERS_TIMEOUT_MS (${headersTimeoutMs}) must not be more than CHANGO_API_REQUEST_TIMEOUT_MS (${requestTimeoutMs})`);
  }
  return {
    ...readSharedSettings(env),
    host: env.HOST || '127.0.0.1',
    port: integerSetting(env, 'PORT', 8080, 0, 65535),
    tokensFile,
    runWaitMs: integerSetting(env, 'CHANGO_RUN_WAIT_MS', 15 * 60_000, 0, 24 * 3_600_000),
    workerAnswerMs: integerSetting(env, 'CHANGO_WORKER_ANSWER_MS', 10_000, 100, 600_000),
    bodyLimitBytes: integerSetting(env, 'CHANGO_BODY_LIMIT_BYTES', 64 * 1024, 1024, 10 * 1024 * 1024),
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs: integerSetting(env, 'CHANGO_API_KEEPALIVE_TIMEOUT_MS', 5_000, 100, 600_000),
    trustProxy: env.CHANGO_API_TRUST_PROXY ?? '',
    tls: tlsFilesFromEnv(env),
    authThrottle: {
      limit: integerSetting(env, 'CHANGO_AUTH_FAILURE_LIMIT', 10, 1, 1_000_000),
      windowMs: integerSetting(env, 'CHANGO_AUTH_FAILURE_WINDOW_MS', 60_000, 1_000, 24 * 3_600_000),
    },
  };
}
