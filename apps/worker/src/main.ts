#!/usr/bin/env node
import { Redis } from 'ioredis';
import { Queue, Worker, type Job } from 'bullmq';
import {
  QUEUES,
  VERIFY_JOB,
  backupJobOptions,
  WORKER_HEARTBEAT_EVERY_MS,
  redisKeys,
  workerTransportKey,
  type BackupJobData,
  type BackupOutcome,
  type VerificationRecord,
  type VerifyJobData,
} from '@chango/contracts';
import { ControlPlaneState } from '@chango/state';
import { createLogger } from '@chango/telemetry';
import { runBackup } from './backup-job.js';
import { BackupSchedule } from './backup-schedule.js';
import { backupUnderWay } from './backups-under-way.js';
import { readWorkerConfig } from './config.js';
import { runControlJob } from './control-jobs.js';
import { DestinationReplica } from './destination-replica.js';
import { Heartbeat } from './heartbeat.js';
import { JobGuard } from './job-guard.js';
import { LeaderLease } from './leader-lease.js';
import { DestinationLeftovers } from './leftovers.js';
import { RunLedger } from './run-ledger.js';
import { runVerify } from './verify-job.js';
import { prepareWorkDir } from './work-dir.js';

/** SIGTERM or SIGINT ends the process within this bound, whatever it was doing (README: within 30 s). */
const STOP_BOUND_MS = 25_000;
/** An interrupted job (deadline, stop) has this long to remove its files and abort its upload before it is failed or handed back anyway. */
const JOB_WIND_DOWN_MS = 10_000;

/**
 * The master-host worker: the one process that holds kms/, iam/ and metadata/
 * open. Every master host runs one; the one holding the leader lease takes the
 * jobs (backups, drills, control requests) and keeps the schedule, the others
 * stand by and follow the destination. A start-up it cannot make safely (no,
 * short or wrong root secret; stores held by another process) ends it at once
 * with one line on stderr and exit status 1, so systemd and operators see why.
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
  redis.on('error', () => undefined); // reported by the heartbeat and the lease, once
  const heartbeat = new Heartbeat(redis, config.queuePrefix, config.nodeId, transportKey.publicKey, log);
  const ledger = new RunLedger(redis, config.queuePrefix, log);
  const leftovers = new DestinationLeftovers(redis, config.queuePrefix, log);
  const guard = new JobGuard(JOB_WIND_DOWN_MS, log);
  // A rejection nobody handled comes from inside a job's work (a library's stray promise): it fails the jobs in hand, it does not end the worker.
  process.on('unhandledRejection', (reason) => {
    log.error({ err: reason instanceof Error ? reason.message : String(reason), jobsInHand: guard.busy }, 'an error escaped its handler: failing the jobs in hand with it');
    guard.failAll(reason);
  });
  // Shares the worker's plain Redis connection (a Queue never blocks on it): one connection fewer.
  const backupQueue = new Queue<BackupJobData | VerifyJobData>(QUEUES.backup, { connection: redis, prefix: config.queuePrefix });
  backupQueue.on('error', () => undefined);
  const schedule = new BackupSchedule(backupQueue as Queue<BackupJobData>, { attempts: config.backupAttempts, backoffMs: config.backupBackoffMs }, log);
  // The closures below refer to `lease`, `backups` and `control`, declared further down: they run only once all exist.
  // Never throws: a Redis blip here is logged, and the next lease renewal tries again.
  const reconcileSchedule = async () => {
    if (!lease.isLeader) return;
    try {
      await schedule.reconcile(replica.destination);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'could not bring the backup schedule in line with the stored one; retrying at the next lease renewal');
    }
  };
  const replica = new DestinationReplica({ redis, prefix: config.queuePrefix, state, rootSecret: config.rootSecret, nodeId: config.nodeId, log, adopted: reconcileSchedule });
  const queueVerify = async (key: string) => {
    await backupQueue.add(VERIFY_JOB, { key, requestedBy: config.nodeId }, backupJobOptions({ attempts: config.backupAttempts, backoffMs: config.backupBackoffMs }));
  };

  const lease = new LeaderLease(redis, config.queuePrefix, config.nodeId, config.leaderLeaseMs, {
    // sync() and reconcileSchedule() never throw, so a new leader always starts taking jobs.
    gained: async () => {
      await replica.sync();
      for (const worker of [backups, control]) void worker.resume();
      await reconcileSchedule();
    },
    lost: async () => {
      await Promise.all([backups.pause(true), control.pause(true)]);
    },
    renewed: reconcileSchedule,
  }, log);
  // Both job workers start paused (autorun: false): only the leader takes jobs.
  const backups = new Worker<BackupJobData | VerifyJobData, BackupOutcome | VerificationRecord>(
    QUEUES.backup,
    (job, token) =>
      job.name === VERIFY_JOB
        ? runVerify(job as Job<VerifyJobData, VerificationRecord>, token, { state, config, log, ledger, guard })
        : runBackup(job as Job<BackupJobData, BackupOutcome>, token, { state, config, log, lease, ledger, guard, leftovers, queueVerify, backupInProgress: (id) => backupUnderWay(backupQueue, id) }),
    {
      connection,
      prefix: config.queuePrefix,
      autorun: false,
      concurrency: 1,
      lockDuration: config.lockDurationMs,
      stalledInterval: config.lockDurationMs,
      // A job whose worker died is taken over; the job itself gives up (in words) after CHANGO_BACKUP_ATTEMPTS deaths,
      // before BullMQ's own limit (which fails it as "job stalled more than allowable limit") is reached.
      maxStalledCount: config.backupAttempts + 1,
    },
  );
  const control = new Worker(QUEUES.control, (job) => runControlJob(job, { state, transportKey, log, replica, saved: reconcileSchedule, s3Timeouts: config.s3Timeouts }), {
    connection,
    prefix: config.queuePrefix,
    autorun: false,
    concurrency: 4,
  });
  for (const worker of [backups, control]) {
    worker.on('failed', (job, err) => log.error({ queue: worker.name, jobId: job?.id, job: job?.name, attempts: job?.attemptsMade, reason: err.message }, 'job failed'));
    worker.on('error', (err) => log.error({ queue: worker.name, err: err.message }, 'queue connection error'));
  }

  await heartbeat.start();
  await replica.load();
  await replica.sync();
  const following = setInterval(() => void replica.sync(), WORKER_HEARTBEAT_EVERY_MS);
  await lease.start();
  log.info(
    { dataDir: config.dataDir, nodeId: config.nodeId, prefix: config.queuePrefix, leader: lease.isLeader, leaseMs: config.leaderLeaseMs, workers: redisKeys(config.queuePrefix).workers },
    'worker ready: control-plane state open',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, boundMs: STOP_BOUND_MS }, 'worker stopping: the job in hand is stopped and handed back to the queue');
    // Whatever hangs (Redis gone, a native call), the process ends within the bound; a job it still held is
    // then taken over once its lock expires, like a crashed worker's.
    setTimeout(() => {
      log.error({ boundMs: STOP_BOUND_MS }, 'worker did not stop within its bound: exiting anyway');
      process.exit(1);
    }, STOP_BOUND_MS).unref();
    clearInterval(following);
    // Stop the job in hand (its upload aborted, its files removed, the job handed back), then hand the lease over at once.
    guard.stopAll(`the worker on ${config.nodeId} is stopping (${signal})`);
    await Promise.all([backups.close(), control.close()]);
    await lease.stop();
    await heartbeat.stop();
    await backupQueue.close().catch(() => undefined);
    redis.disconnect();
    await state.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
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
