#!/usr/bin/env node
import { Redis } from 'ioredis';
import { Worker } from 'bullmq';
import { QUEUES, redisKeys, workerTransportKey } from '@chango/contracts';
import { ControlPlaneState } from '@chango/state';
import { createLogger } from '@chango/telemetry';
import { runBackup } from './backup-job.js';
import { readWorkerConfig } from './config.js';
import { runControlJob } from './control-jobs.js';
import { Heartbeat } from './heartbeat.js';
import { prepareWorkDir } from './work-dir.js';

/**
 * The master-host worker: the one process that holds kms/, iam/ and metadata/
 * open, and runs the jobs the api enqueues. A start-up it cannot make safely
 * (no, short or wrong root secret; stores held by another process) ends it at
 * once with one line on stderr and exit status 1, so systemd and operators see why.
 */
async function main(): Promise<void> {
  const log = createLogger('chango-worker');
  const config = readWorkerConfig();
  const state = await ControlPlaneState.open({ dataDir: config.dataDir, rootSecret: config.rootSecret, create: true });
  const stale = await prepareWorkDir(config.workDir);
  if (stale.length > 0) log.warn({ workDir: config.workDir, removed: stale }, 'removed checkpoints left by an earlier run');

  const transportKey = workerTransportKey(config.rootSecret);
  const connection = { url: config.redisUrl, maxRetriesPerRequest: null };
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  redis.on('error', () => undefined); // reported by the heartbeat, once
  const heartbeat = new Heartbeat(redis, config.queuePrefix, config.nodeId, transportKey.publicKey, log);

  const backups = new Worker(QUEUES.backup, (job) => runBackup(job, { state, config, log }), {
    connection,
    prefix: config.queuePrefix,
    concurrency: 1,
    lockDuration: config.lockDurationMs,
    stalledInterval: config.lockDurationMs,
    maxStalledCount: 1,
  });
  const control = new Worker(QUEUES.control, (job) => runControlJob(job, { state, transportKey, log }), {
    connection,
    prefix: config.queuePrefix,
    concurrency: 4,
  });
  for (const worker of [backups, control]) {
    worker.on('failed', (job, err) => log.error({ queue: worker.name, jobId: job?.id, attempts: job?.attemptsMade, reason: err.message }, 'job failed'));
    worker.on('error', (err) => log.error({ queue: worker.name, err: err.message }, 'queue connection error'));
  }
  await heartbeat.start();
  log.info({ dataDir: config.dataDir, nodeId: config.nodeId, prefix: config.queuePrefix, workers: redisKeys(config.queuePrefix).workers }, 'worker ready: control-plane state open, taking jobs');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'worker stopping: finishing the job in hand');
    await Promise.all([backups.close(), control.close()]);
    await heartbeat.stop();
    redis.disconnect();
    await state.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  // One line, for systemd's journal and a tired operator; every start-up error is written to be read as is.
  process.stderr.write(`chango-worker: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
