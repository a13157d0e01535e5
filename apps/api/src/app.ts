import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from '@chango/telemetry';
import type { ApiConfig } from './config.js';
import { AuthThrottle } from './auth-throttle.js';
import { errorHandler, HttpError, notFound } from './http-errors.js';
import { createMetrics } from './metrics.js';
import { BackupJobs } from './backup-jobs.js';
import type { RedisLink } from './redis-link.js';
import { adminUiRoutes } from './routes/admin-ui.js';
import { backupRoutes } from './routes/backup.js';
import { healthRoutes } from './routes/health.js';
import { openapiRoutes } from './routes/openapi.js';
import type { TokenEntry } from '@chango/security';

export interface AppDeps {
  config: ApiConfig;
  link: RedisLink;
  tokens: () => TokenEntry[];
  log: Logger;
}

/** The Express app: routes, body limits, one JSON error shape, one log line per request (no headers, no bodies). */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  if (deps.config.trustProxy) app.set('trust proxy', trustProxySetting(deps.config.trustProxy));
  app.use((req, res, next) => {
    const started = performance.now();
    res.on('finish', () =>
      deps.log.info({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(performance.now() - started), caller: req.caller?.name }, 'request'),
    );
    next();
  });
  app.use(refuseDeclaredOversize(deps.config.bodyLimitBytes));
  const throttle = new AuthThrottle(deps.link, deps.config.authThrottle, deps.log);
  const jobs = new BackupJobs(deps.link, deps.config.retry);
  app.use(healthRoutes(jobs, createMetrics(deps.link)));
  app.use(backupRoutes({ config: deps.config, jobs, tokens: deps.tokens, log: deps.log, throttle }));
  app.use(openapiRoutes());
  app.use(adminUiRoutes(deps.tokens, throttle));
  app.use(notFound);
  app.use(errorHandler(deps.log));
  return app;
}

/**
 * A Content-Length over the limit is refused at once, before a byte of the
 * body is read, and the connection is closed after the answer: waiting for a
 * body a client only claims to send would hold the connection (body-parser
 * reads a refused body to its end before it answers).
 */
function refuseDeclaredOversize(limit: number): RequestHandler {
  return (req, res, next) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      res.set('Connection', 'close');
      throw new HttpError(413, 'body_too_large', `the request body is declared as ${declared} bytes; at most ${limit} are accepted`, [{ field: 'Content-Length', message: `is more than ${limit}` }]);
    }
    next();
  };
}

/** CHANGO_API_TRUST_PROXY as Express takes it: a hop count, or addresses/subnets/names (loopback, uniquelocal) separated by commas. */
function trustProxySetting(value: string): number | string[] {
  return /^\d+$/.test(value) ? Number(value) : value.split(',').map((part) => part.trim()).filter(Boolean);
}
