import express, { type Express } from 'express';
import type { Logger } from '@chango/telemetry';
import type { ApiConfig } from './config.js';
import { errorHandler, notFound } from './http-errors.js';
import { createMetrics } from './metrics.js';
import type { JobQueues } from './queues.js';
import { adminUiRoutes } from './routes/admin-ui.js';
import { backupRoutes } from './routes/backup.js';
import { healthRoutes } from './routes/health.js';
import { openapiRoutes } from './routes/openapi.js';
import type { TokenEntry } from '@chango/contracts';

export interface AppDeps {
  config: ApiConfig;
  queues: JobQueues;
  tokens: () => TokenEntry[];
  log: Logger;
}

/** The Express app: routes, body limits, one JSON error shape, one log line per request (no headers, no bodies). */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use((req, res, next) => {
    const started = performance.now();
    res.on('finish', () =>
      deps.log.info({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(performance.now() - started), caller: req.caller?.name }, 'request'),
    );
    next();
  });
  app.use(express.json({ limit: deps.config.bodyLimitBytes, strict: true }));
  app.use(healthRoutes(deps.queues, createMetrics(deps.queues)));
  app.use(backupRoutes(deps));
  app.use(openapiRoutes());
  app.use(adminUiRoutes(deps.tokens));
  app.use(notFound);
  app.use(errorHandler(deps.log));
  return app;
}
