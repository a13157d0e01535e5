import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UnrecoverableError, type Job } from 'bullmq';
import { jobDeadlineMs } from '../../apps/worker/src/deadlines.js';
import { JobGuard, JobInterrupted } from '../../apps/worker/src/job-guard.js';
import { attemptWords, isFinalFailure } from '../../apps/worker/src/job-outcome.js';
import { resourceExhaustion, workSpaceNeeded } from '../../apps/worker/src/work-space.js';
import { createLogger, formatBytes } from '@chango/telemetry';

/** The few fields of a BullMQ job these functions read. */
function job(attemptsMade: number, attempts: number, backoffMs = 10_000): Job {
  return { attemptsMade, opts: { attempts, backoff: { type: 'exponential', delay: backoffMs } } } as unknown as Job;
}

describe('what a failed attempt says happens next', () => {
  test('a retried attempt says which one it was and when the next comes (exponential backoff)', () => {
    const err = new Error('S3 endpoint http://s3:8080 moved no byte for 30 s');
    assert.equal(isFinalFailure(job(0, 3), err), false);
    assert.equal(attemptWords(job(0, 3), err, false), '(attempt 1 of 3; the next one in 10 s)');
    assert.equal(attemptWords(job(1, 3), err, false), '(attempt 2 of 3; the next one in 20 s)');
  });

  test('the last attempt never promises a retry', () => {
    const err = new Error('connection reset');
    assert.equal(isFinalFailure(job(2, 3), err), true);
    const words = attemptWords(job(2, 3), err, true);
    assert.equal(words, '(attempt 3 of 3; no attempt left)');
    assert.doesNotMatch(words, /retr(y|ied)/);
  });

  test('a failure retrying cannot fix is final on its first attempt, and says so', () => {
    const err = new UnrecoverableError('bucket "x" does not exist');
    assert.equal(isFinalFailure(job(0, 3), err), true);
    assert.equal(attemptWords(job(0, 3), err, true), '(attempt 1 of 3; not retried: retrying cannot fix this)');
  });
});

describe('the job watchdog', () => {
  const log = createLogger('test', { level: 'silent' });

  test('the deadline derives from the state size above a floor, and an override wins', () => {
    const settings = { jobDeadlineMs: 0, jobDeadlineFloorMs: 600_000 };
    assert.equal(jobDeadlineMs(0, settings), 600_000);
    assert.equal(jobDeadlineMs(1024 ** 3, settings), 600_000 + 1024 * 1000, '1 GiB of state adds 1024 s');
    assert.equal(jobDeadlineMs(1024 ** 3, { ...settings, jobDeadlineMs: 5_000 }), 5_000);
  });

  test('past its deadline a job that ignores the signal is still ended, with where it was', async () => {
    const guard = new JobGuard(50, log);
    const run = guard.begin('j1', 30, () => 'phase upload, 10 of 20 bytes');
    const never = new Promise<never>(() => undefined);
    const err = await run.bound(never).then(
      () => assert.fail('a job that never settles must be ended'),
      (e: unknown) => e,
    );
    run.end();
    assert.ok(err instanceof JobInterrupted);
    assert.equal(err.kind, 'deadline');
    assert.match(err.message, /deadline of 30 ms \(phase upload, 10 of 20 bytes\)/);
    assert.equal(guard.busy, false);
  });

  test('stopping the worker interrupts every job in hand; a job that finishes in time keeps its result', async () => {
    const guard = new JobGuard(1_000, log);
    const run = guard.begin('j2', 60_000, () => 'phase archive');
    const work = new Promise<string>((resolve) => run.signal.addEventListener('abort', () => resolve('wound down'), { once: true }));
    guard.stopAll('SIGTERM');
    assert.equal(await run.bound(work), 'wound down');
    assert.ok(run.explain(new Error('AbortError')) instanceof JobInterrupted, 'the reason an operator reads is the stop, not the AbortError');
    assert.equal((run.signal.reason as JobInterrupted).kind, 'stopping');
    run.end();
  });
});

describe('a full disk in words', () => {
  test('RocksDB\'s ENOSPC (words, no code) and Node\'s (a code) both name the work dir and are final', () => {
    const rocks = resourceExhaustion(new Error('IO error: No space left on device While appending to file: /w/x/metadata/000016.sst'), '/w', 'writing the checkpoint');
    assert.ok(rocks instanceof UnrecoverableError);
    assert.match(rocks.message, /^the work dir \/w ran out of space \(ENOSPC\) while writing the checkpoint/);
    const node = resourceExhaustion(Object.assign(new Error('EMFILE: too many open files, open'), { code: 'EMFILE' }), '/w', 'writing the archive');
    assert.match(node?.message ?? '', /ran out of file descriptors \(this process\) \(EMFILE\)/);
    assert.equal(resourceExhaustion(new Error('ECONNRESET'), '/w', 'uploading'), undefined);
  });

  test('the space a backup needs is twice the state plus slack, printed for people', () => {
    assert.equal(workSpaceNeeded(100 * 1024 * 1024), 208 * 1024 * 1024);
    assert.equal(formatBytes(208 * 1024 * 1024), '208.0 MiB');
    assert.equal(formatBytes(512), '512 bytes');
  });
});
