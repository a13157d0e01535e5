import { randomUUID } from 'node:crypto';
import { CONTROL_JOB_OPTIONS, CONTROL_JOBS, type ControlJobData, type ControlOutcome } from '@chango/contracts';
import { HttpError } from './http-errors.js';
import type { RedisLink } from './redis-link.js';

const JOB_NAMES: Record<ControlJobData['op'], string> = {
  'config.get': CONTROL_JOBS.getConfig,
  'config.put': CONTROL_JOBS.putConfig,
  'objects.list': CONTROL_JOBS.listObjects,
};

/**
 * Asks the worker (which alone holds the stores) and waits for its answer. A
 * refusal it gives (bad field, nothing configured, S3 refusing) becomes the
 * HttpError it names; no answer in time becomes 503 naming the worker.
 */
export async function askWorker<T>(link: RedisLink, request: ControlJobData, waitMs: number): Promise<T> {
  const job = await link.bounded(() =>
    link.control.add(JOB_NAMES[request.op], request, { jobId: randomUUID(), ...CONTROL_JOB_OPTIONS }),
  );
  let outcome: ControlOutcome<T>;
  try {
    outcome = (await job.waitUntilFinished(link.controlEvents, waitMs)) as ControlOutcome<T>;
  } catch (err) {
    if (/timed out/i.test((err as Error).message)) {
      await job.remove().catch(() => undefined);
      throw new HttpError(503, 'worker_unavailable', `no chango worker answered within ${waitMs} ms: is chango-worker running on the master host?`);
    }
    throw new HttpError(500, 'worker_failed', `the worker failed on ${request.op}: ${(err as Error).message}`);
  }
  if (!outcome.ok) {
    throw new HttpError(outcome.status, outcome.error, outcome.field ? `${outcome.field} ${outcome.message}` : outcome.message, outcome.field ? [{ field: outcome.field, message: outcome.message }] : undefined);
  }
  return outcome.value;
}
