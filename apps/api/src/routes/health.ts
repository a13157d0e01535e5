import { Router } from 'express';
import type { Registry } from 'prom-client';
import type { BackupJobs } from '../backup-jobs.js';

/** Liveness, readiness and the Prometheus scrape: no token needed, nothing secret in any of them. */
export function healthRoutes(jobs: BackupJobs, metrics: Registry): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    let redis = 'ok';
    let workers: string[] = [];
    try {
      workers = await jobs.aliveWorkers();
    } catch (err) {
      redis = (err as Error).message;
    }
    const ready = redis === 'ok' && workers.length > 0;
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ready' : 'not ready',
      redis,
      workers,
      ...(redis === 'ok' && workers.length === 0 ? { reason: 'no chango worker has sent a heartbeat recently' } : {}),
    });
  });

  router.get('/metrics', async (_req, res) => {
    res.type(metrics.contentType).send(await metrics.metrics());
  });

  return router;
}
