import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Field names that may carry secrets anywhere in a log object. pino replaces
 * them with "[redacted]" before a line is written: a belt to go with the
 * braces of never logging secrets in the first place.
 */
export const REDACTED_PATHS = [
  'secretKey',
  '*.secretKey',
  'rootSecret',
  '*.rootSecret',
  'token',
  '*.token',
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
];

/** JSON lines on stdout (or `destination`), one logger per process, named after the app. */
export function createLogger(name: string, options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const config = { name, level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  return options.destination ? pino(config, options.destination) : pino(config);
}
