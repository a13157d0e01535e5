#!/usr/bin/env node
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { BACKUP_JOB, COPY_JOB, QUEUES, VERIFY_JOB, WORKER_HEARTBEAT_EVERY_MS, backupJobOptions, describeRedis, redisConnectionOptions, redisKeys, type BackupQueueData, type CopyJobData } from '@chango/contracts';
import { workerTransportKey } from '@chango/security';
import { ControlPlaneState } from '@chango/state';
import { createLogger, type Logger } from '@chango/telemetry';
import { runBackup } from './backup-job.js';
import { BackupSchedule } from './backup-schedule.js';
import { backupUnderWay } from './backups-under-way.js';
import { readWorkerConfig, type WorkerConfig } from './config.js';
import { runControlJob } from './control-jobs.js';
import { DestinationReplica } from './destination-replica.js';
import { Heartbeat } from './heartbeat.js';
import { JobGuard } from './job-guard.js';
import { JobWorkers } from './job-workers.js';
import { LeaderLease } from './leader-lease.js';
import { Leadership } from './leadership.js';
import { DestinationLeftovers } from './leftovers.js';
import { RunLedger } from './run-ledger.js';
import { runVerify } from './verify-job.js';
import { runCopy } from './copy-job.js';
import { STOP_BOUND_MS } from './stop-bound.js';
import { prepareWorkDir } from './work-dir.js';
import { lowerPriority } from './priority.js';

/** An interrupted job (deadline, stop) has this long to remove its files and abort its upload before it is failed or handed back anyway. */
const JOB_WIND_DOWN_MS = 10_000;

/**
 * The master-host worker: the one process that holds kms/, iam/ and metadata/
 * open. Every master host runs one; the one holding the leader lease takes the
 * jobs (backups, drills, control requests) and keeps the schedule, the others
 * stand by and follow the destination (leadership.ts). A start-up it cannot
 * make safely (no, short or wrong root secret; stores held by another process)
 * ends it at once with one line on stderr and exit status 1, so systemd and
 * operators see why. Below: the parts, built in the order they depend on each other.
 */
async function main(): Promise<void> {
  const log = createLogger('chango-worker');
  const config = readWorkerConfig();
  // Before the stores open and the thread pool starts: their threads inherit the priority.
  const lowered = lowerPriority(config.nice);
  if (lowered > 0) log.info({ nice: config.nice, threads: lowered }, 'CPU priority lowered: the api and the control plane come first');
  const state = await ControlPlaneState.open({ dataDir: config.dataDir, rootSecret: config.rootSecret, create: true });
  await clearWorkDir(config, log);
  const guard = new JobGuard(JOB_WIND_DOWN_MS, log);
  failJobsInHandOnStrayRejections(guard, log);

  const { url, ...target } = redisConnectionOptions(config);
  const redis = url ? new Redis(url, { ...target, maxRetriesPerRequest: null }) : new Redis({ ...target, maxRetriesPerRequest: null });
  redis.on('error', () => undefined); // reported by the heartbeat and the lease, once
  // Shares the plain Redis connection (a Queue never blocks on it): one connection fewer.
  const backupQueue = new Queue<BackupQueueData>(QUEUES.backup, { connection: redis, prefix: config.queuePrefix });
  backupQueue.on('error', () => undefined);
  const transportKey = workerTransportKey(config.rootSecret);
  const heartbeat = new Heartbeat(redis, config.queuePrefix, config.nodeId, transportKey.publicKey, log);
  const ledger = new RunLedger(redis, config.queuePrefix, log);
  const leftovers = new DestinationLeftovers(redis, config.queuePrefix, log);
  const replica = new DestinationReplica({ redis, prefix: config.queuePrefix, state, rootSecret: config.rootSecret, nodeId: config.nodeId, log });
  const lease = new LeaderLease(redis, config.queuePrefix, config.nodeId, config.leaderLeaseMs, log);

  const jobs = new JobWorkers(
    config,
    {
      backupQueue: {
        [BACKUP_JOB]: (job, token) =>
          runBackup(job, token, {
            state, config, log, lease, ledger, guard, leftovers,
            queueVerify: async (key) => void (await backupQueue.add(VERIFY_JOB, { key, from: config.verifyScheduledFrom, requestedBy: config.nodeId }, backupJobOptions(config.retry))),
            queueCopy: async (result) => {
              if (!replica.destination?.copy) return;
              const data: CopyJobData = { key: result.key, sha256: result.sha256, size: result.size, backupId: result.backupId, trigger: result.trigger, requestedBy: config.nodeId };
              await backupQueue.add(COPY_JOB, data, backupJobOptions(config.retry));
            },
            backupUnderWay: (jobId) => backupUnderWay(backupQueue, jobId),
          }),
        [VERIFY_JOB]: (job, token) => runVerify(job, token, { state, config, log, ledger, guard }),
        [COPY_JOB]: (job, token) => runCopy(job, token, { state, config, log, lease, ledger, guard }),
      },
      control: (job) => runControlJob(job, { state, transportKey, log, replica, ledger, s3Timeouts: config.s3Timeouts }),
    },
    log,
  );
  const leadership = new Leadership(lease, { replica, schedule: new BackupSchedule(backupQueue, config.retry, log), jobs, log });

  await heartbeat.start();
  await replica.load();
  await replica.follow(WORKER_HEARTBEAT_EVERY_MS);
  await leadership.start();
  log.info(
    { dataDir: config.dataDir, nodeId: config.nodeId, redis: describeRedis(config), prefix: config.queuePrefix, leader: leadership.isLeader, leaseMs: config.leaderLeaseMs, nice: config.nice, workers: redisKeys(config.queuePrefix).workers },
    'worker ready: control-plane state open',
  );

  // In this order: the job in hand is stopped (upload aborted, files removed) and handed back, then the lease handed over at once.
  stopOnSignals(log, async (signal) => {
    replica.stop();
    guard.stopAll(`the worker on ${config.nodeId} is stopping (${signal})`);
    await jobs.close();
    await leadership.stop();
    await heartbeat.stop();
    await backupQueue.close().catch(() => undefined);
    redis.disconnect();
    await state.close();
  });
}

/**
 * SIGTERM or SIGINT runs `stop` once and exits 0. Whatever hangs (Redis gone, a native call), the
 * process ends within STOP_BOUND_MS; a job it still held is then taken over once its lock
 * expires, like a crashed worker's.
 */
function stopOnSignals(log: Logger, stop: (signal: string) => Promise<void>): void {
  let stopping = false;
  const onSignal = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, boundMs: STOP_BOUND_MS }, 'worker stopping: the job in hand is stopped and handed back to the queue');
    setTimeout(() => {
      log.error({ boundMs: STOP_BOUND_MS }, 'worker did not stop within its bound: exiting anyway');
      process.exit(1);
    }, STOP_BOUND_MS).unref();
    await stop(signal);
    process.exit(0);
  };
  process.once('SIGTERM', () => void onSignal('SIGTERM'));
  process.once('SIGINT', () => void onSignal('SIGINT'));
}

/** Removes what a worker killed mid-backup left in the work dir: only this process uses it (it holds the stores' lock). */
async function clearWorkDir(config: WorkerConfig, log: Logger): Promise<void> {
  const stale = await prepareWorkDir(config.workDir);
  if (stale.length > 0) log.warn({ workDir: config.workDir, removed: stale }, 'removed checkpoints left by an earlier run');
}

/** A rejection nobody handled comes from inside a job's work (a library's stray promise): it fails the jobs in hand, it does not end the worker. */
function failJobsInHandOnStrayRejections(guard: JobGuard, log: Logger): void {
  process.on('unhandledRejection', (reason) => {
    log.error({ err: reason instanceof Error ? reason.message : String(reason), jobsInHand: guard.busy }, 'an error escaped its handler: failing the jobs in hand with it');
    guard.failAll(reason);
  });
}

process.on('uncaughtException', (err) => {
  // Nothing sane can continue after this: one line to say why, and systemd restarts the worker, which takes its job over.
  process.stderr.write(`chango-worker: fatal: ${err.stack ?? err.message}\n`);
  process.exit(1);
});

main().catch((err: unknown) => {
  // One line, for systemd's journal and a tired operator; every start-up error is written to be read as is.
  process.stderr.write(`chango-worker: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
