import express, { Router, type Request } from 'express';
import {
  BACKUP_DEDUPLICATION_ID,
  BACKUP_JOB,
  DestinationUpdateSchema,
  withoutSecrets,
  ObjectsPageSchema,
  VERIFY_DEDUPLICATION_ID,
  VERIFY_JOB,
  fieldErrors,
  VerifyRequestSchema,
  type BackupJobData,
  type VerifyJobData,
  type DrillSource,
  type ConfigResult,
  type ObjectsResult,
} from '@chango/contracts';
import { sealForWorker } from '@chango/security';
import type { Logger } from '@chango/telemetry';
import type { AuthThrottle } from '../auth-throttle.js';
import { requireRole } from '../auth.js';
import type { ApiConfig } from '../config.js';
import { HttpError } from '../http-errors.js';
import type { BackupJobs } from '../backup-jobs.js';
import type { TokenEntry } from '@chango/security';

export interface BackupRoutesDeps {
  config: ApiConfig;
  jobs: BackupJobs;
  tokens: () => TokenEntry[];
  log: Logger;
  throttle: AuthThrottle;
}

const BASE = '/admin/api/backup';


/** The spec's REST API: destination config, run, job status and history, objects at the destination. */
export function backupRoutes({ config, jobs, tokens, log, throttle }: BackupRoutesDeps): Router {
  const router = Router();
  const viewer = requireRole(tokens, 'viewer', throttle);
  const admin = requireRole(tokens, 'admin', throttle);
  // Bodies are read after the token is checked: nobody makes the api read a body without one.
  const json = express.json({ limit: config.bodyLimitBytes, strict: true });

  /** A job with nowhere to go is refused now (409), not after it has been queued. */
  const requireDestination = async (): Promise<void> => {
    const { config: stored } = await jobs.askWorker<ConfigResult>({ op: 'config.get' }, config.workerAnswerMs);
    if (!stored) throw new HttpError(409, 'not_configured', 'no backup destination is configured: PUT /admin/api/backup/config first');
  };

  router.get(`${BASE}/config`, viewer, async (_req, res) => {
    const { config: stored } = await jobs.askWorker<ConfigResult>({ op: 'config.get' }, config.workerAnswerMs);
    if (!stored) throw new HttpError(404, 'not_configured', 'no backup destination is configured yet: PUT it first');
    res.json(stored);
  });

  router.put(`${BASE}/config`, admin, json, async (req, res) => {
    const { update, secretKey, copySecretKey } = withoutSecrets(parseJsonBody(req, DestinationUpdateSchema, 'invalid_config'));
    // The secrets cross Redis sealed to the worker's key, never in plaintext.
    const seal = async (secret: string | undefined) => (secret === undefined ? undefined : sealForWorker(secret, await jobs.workerTransportKey()));
    const [sealedSecretKey, sealedCopySecretKey] = [await seal(secretKey), await seal(copySecretKey)];
    const result = await jobs.askWorker<ConfigResult>(
      { op: 'config.put', update, ...(sealedSecretKey ? { sealedSecretKey } : {}), ...(sealedCopySecretKey ? { sealedCopySecretKey } : {}) },
      config.workerAnswerMs,
    );
    log.info(
      { caller: req.caller?.name, endpoint: update.endpoint, bucket: update.bucket, copy: update.copy?.type ?? null, secretKeyChanged: secretKey !== undefined, copySecretKeyChanged: copySecretKey !== undefined },
      'backup destination updated',
    );
    res.json(result.config);
  });

  router.post(`${BASE}/run`, admin, async (req, res) => {
    const wait = parseWaitFlag(req);
    await requireDestination();
    // A backup already running (a scheduled one, say) answers this request: one backup at a time per cluster.
    const running = await jobs.runningBackupId();
    const data: BackupJobData = { trigger: 'api', requestedBy: req.caller?.name ?? 'unknown' };
    const { jobId, alreadyRunning } = running ? { jobId: running, alreadyRunning: true } : await jobs.enqueue(BACKUP_JOB, data, BACKUP_DEDUPLICATION_ID);
    log.info({ caller: req.caller?.name, jobId, alreadyRunning }, alreadyRunning ? 'backup requested: one is already under way' : 'backup requested');
    if (wait && config.runWaitMs > 0) await jobs.waitForEnd(jobId, config.runWaitMs);
    const view = await jobs.view(jobId);
    if (!view) throw new HttpError(500, 'internal', `job ${jobId} vanished right after it was queued`);
    const statusUrl = `${BASE}/jobs/${jobId}`;
    if (view.state === 'completed' && view.result) {
      res.status(200).json({ jobId, alreadyRunning, statusUrl, ...view.result });
    } else if (view.state === 'failed') {
      res.status(502).json({ error: 'backup_failed', message: view.failure?.message ?? 'the backup failed', jobId, statusUrl, job: view });
    } else {
      res.status(202).location(statusUrl).json({ jobId, alreadyRunning, state: view.state, statusUrl, progress: view.progress });
    }
  });

  router.post(`${BASE}/verify`, admin, json, async (req, res) => {
    let key: string | null = null;
    let from: DrillSource = 'primary';
    if (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') {
      const body = parseJsonBody(req, VerifyRequestSchema, 'invalid_request');
      key = body.key ?? null;
      from = body.from ?? 'primary';
    }
    await requireDestination();
    const data: VerifyJobData = { key, from, requestedBy: req.caller?.name ?? 'unknown' };
    const { jobId, alreadyRunning } = await jobs.enqueue(VERIFY_JOB, data, VERIFY_DEDUPLICATION_ID);
    const statusUrl = `${BASE}/jobs/${jobId}`;
    log.info({ caller: req.caller?.name, jobId, key, from, alreadyRunning }, 'restore drill requested');
    res.status(202).location(statusUrl).json({ jobId, alreadyRunning, key, statusUrl });
  });

  router.get(`${BASE}/jobs`, viewer, async (req, res) => {
    const limit = parseLimit(req);
    res.json({ jobs: await jobs.list(limit) });
  });

  router.get(`${BASE}/jobs/:id`, viewer, async (req, res) => {
    const id = String(req.params.id);
    if (!/^[A-Za-z0-9:_-]{1,128}$/.test(id)) throw new HttpError(400, 'invalid_job_id', 'id is not a job id', [{ field: 'id', message: 'is not a job id' }]);
    const view = await jobs.view(id);
    if (!view) throw new HttpError(404, 'unknown_job', `no backup job with id ${id} (it may have expired from the history)`);
    res.json(view);
  });

  router.get(`${BASE}/status`, viewer, async (_req, res) => {
    res.json(await jobs.status());
  });

  router.get(`${BASE}/objects`, viewer, async (req, res) => {
    const page = parseQuery(ObjectsPageSchema, { limit: parseLimit(req), cursor: req.query.cursor });
    res.json(await jobs.askWorker<ObjectsResult>({ op: 'objects.list', page }, config.workerAnswerMs));
  });

  return router;
}

/** Query parameters, validated by `schema`: 400 naming every parameter at fault. */
function parseQuery<T>(schema: BodySchema<T>, values: Record<string, unknown>): T {
  return validated(schema, Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)), 'invalid_query');
}

/** What parseJsonBody needs of a schema from @chango/contracts (so this app needs no zod of its own). */
interface BodySchema<T> {
  safeParse(value: unknown): { success: true; data: T } | { success: false; error: Parameters<typeof fieldErrors>[0] };
}

/** The JSON body, validated by `schema`: 415 when it is not JSON, 400 naming every field at fault. */
function parseJsonBody<T>(req: Request, schema: BodySchema<T>, error: string): T {
  requireJsonBody(req);
  return validated(schema, req.body, error);
}

/** `value` as `schema` has it, or a 400 `error` naming every field at fault. */
function validated<T>(schema: BodySchema<T>, value: unknown, error: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const fields = fieldErrors(parsed.error);
  throw new HttpError(400, error, fields.map((f) => `${f.field} ${f.message}`).join('; '), fields);
}

function requireJsonBody(req: Request): void {
  if (!req.is('application/json')) {
    throw new HttpError(415, 'unsupported_media_type', 'the body must be JSON (Content-Type: application/json)', [{ field: '(body)', message: 'must be application/json' }]);
  }
}

function parseWaitFlag(req: Request): boolean {
  const raw = req.query.wait;
  if (raw === undefined) return true;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw new HttpError(400, 'invalid_query', 'wait must be true or false', [{ field: 'wait', message: 'must be true or false' }]);
}

function parseLimit(req: Request): number {
  const raw = req.query.limit;
  if (raw === undefined) return 50;
  const limit = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(limit) || limit < 1 || limit > 500) {
    throw new HttpError(400, 'invalid_query', 'limit must be a whole number from 1 to 500', [{ field: 'limit', message: 'must be a whole number from 1 to 500' }]);
  }
  return limit;
}
