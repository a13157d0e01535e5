/**
 * What the chaos harness reads of the service, through its own api only (as an operator would):
 * job views, the job list, status, the counters of /metrics. Reads never throw on a service
 * that is down (a Redis outage answers 503): they return undefined, and the caller's bounded
 * wait goes on.
 */
import type { BackupStatus } from '@chango/contracts';
import type { JobView } from '../apps/api/src/job-view.js';
import type { Stack } from '../testkit/stack.js';

export type { JobView };

export const FINAL_STATES = new Set(['completed', 'failed']);
/** States of a job that is not over: what "no job active or waiting" counts. */
export const PENDING_STATES = new Set(['active', 'waiting', 'delayed', 'prioritized', 'waiting-children', 'paused']);
/** Enough for every job a case makes (a handful), so none is missed by the listing. */
export const JOB_LIST_LIMIT = 500;

/** A job's view; 'unknown' when the api says 404 (e.g. Redis lost it); undefined when the api could not answer. */
export async function jobView(stack: Stack, id: string): Promise<JobView | 'unknown' | undefined> {
  try {
    const res = await stack.request<JobView>('GET', `/admin/api/backup/jobs/${id}`, { timeoutMs: 10_000 });
    if (res.status === 404) return 'unknown';
    return res.status === 200 ? res.body : undefined;
  } catch {
    return undefined;
  }
}

export async function jobList(stack: Stack): Promise<JobView[] | undefined> {
  try {
    const res = await stack.request<{ jobs: JobView[] }>('GET', `/admin/api/backup/jobs?limit=${JOB_LIST_LIMIT}`, { timeoutMs: 10_000 });
    return res.status === 200 ? res.body.jobs : undefined;
  } catch {
    return undefined;
  }
}

export async function backupStatus(stack: Stack): Promise<BackupStatus | undefined> {
  try {
    const res = await stack.request<BackupStatus>('GET', '/admin/api/backup/status', { timeoutMs: 10_000 });
    return res.status === 200 ? res.body : undefined;
  } catch {
    return undefined;
  }
}

/** `chango_backup_runs_total` and `chango_backup_verify_runs_total` by their labels, e.g. `runs{api,success}` → 2, `verify{success}` → 1. */
export async function runCounters(stack: Stack): Promise<Map<string, number> | undefined> {
  try {
    const res = await stack.request<string>('GET', '/metrics', { token: null, timeoutMs: 10_000 });
    if (res.status !== 200 || typeof res.body !== 'string') return undefined;
    if (/^chango_backup_redis_up 0$/m.test(res.body)) return undefined;
    const counters = new Map<string, number>();
    for (const m of res.body.matchAll(/^chango_backup_runs_total\{trigger="([^"]+)",result="([^"]+)"\} (\S+)$/gm)) {
      counters.set(`runs{${m[1]},${m[2]}}`, Number(m[3]));
    }
    for (const m of res.body.matchAll(/^chango_backup_verify_runs_total\{result="([^"]+)"\} (\S+)$/gm)) counters.set(`verify{${m[1]}}`, Number(m[2]));
    return counters;
  } catch {
    return undefined;
  }
}

export function isFinal(job: JobView | 'unknown' | undefined): boolean {
  return job === 'unknown' || (job !== undefined && FINAL_STATES.has(job.state));
}

export function describeOutcome(job: JobView | 'unknown' | undefined): string {
  if (job === 'unknown') return 'lost (the job is gone from Redis)';
  if (!job) return 'unknown (the api did not answer)';
  if (job.state === 'failed') return `failed: ${job.failure?.message ?? '(no message)'}`;
  if (job.state === 'completed') {
    const result = job.result as { key?: string; skipped?: boolean } | null;
    return result?.skipped ? 'completed (skipped)' : `completed${result?.key ? ` (${result.key.split('/').pop()})` : ''}`;
  }
  return `${job.state}${job.progress ? ` in ${job.progress.phase}` : ''}`;
}

/** Polls every `everyMs` until `probe` gives a value or `boundMs` passes (then undefined). */
export async function pollUntil<T>(probe: () => Promise<T | undefined>, boundMs: number, everyMs: number): Promise<T | undefined> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
