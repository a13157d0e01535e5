import { UnrecoverableError, type Job } from 'bullmq';
import type { VerificationRecord, VerifyJobData } from '@chango/contracts';
import { drill } from '@chango/restore';
import { BackupBucket, S3Failure } from '@chango/s3';
import type { ControlPlaneState } from '@chango/state';
import type { Logger } from '@chango/telemetry';
import type { WorkerConfig } from './config.js';
import type { RunLedger } from './run-ledger.js';

export interface VerifyContext {
  state: ControlPlaneState;
  config: WorkerConfig;
  log: Logger;
  ledger: RunLedger;
}

/**
 * The restore drill as a job: download a backup, check its checksum against
 * the sidecar, extract and check every file against the manifest, open the
 * stores with the root secret, decrypt every secret, compare record counts.
 * The outcome is written beside the archive (`<key>.verify.json`) and kept as
 * the last drill. S3 trouble is retried; a backup that does not restore is a
 * recorded, final failure.
 */
export async function runVerify(job: Job<VerifyJobData, VerificationRecord>, ctx: VerifyContext): Promise<VerificationRecord> {
  const destination = await ctx.state.metadata.backupDestination();
  if (!destination) throw new UnrecoverableError('no backup destination is configured: nothing to verify');
  const bucket = new BackupBucket(destination);
  const key = job.data.key ?? (await newestCompleteBackup(bucket));
  const started = Date.now();
  const record = (fields: Pick<VerificationRecord, 'ok' | 'sha256' | 'records' | 'error'>): VerificationRecord => ({
    key,
    verifiedAt: new Date().toISOString(),
    durationMs: Date.now() - started,
    nodeId: ctx.config.nodeId,
    ...fields,
  });

  let outcome: VerificationRecord;
  try {
    await job.updateProgress({ phase: 'verify', bytesDone: 0, bytesExpected: null });
    const archive = await bucket.open(key);
    if (!archive.sidecarSha256) {
      archive.stream.destroy();
      throw new DrillRefused(`${key} has no sidecar (${key}.sha256): it never committed, so it is not a backup`);
    }
    if (archive.metadataSha256 && archive.metadataSha256 !== archive.sidecarSha256) {
      archive.stream.destroy();
      throw new DrillRefused(`the sidecar of ${key} says ${archive.sidecarSha256} but the object's metadata says ${archive.metadataSha256}: one of them was tampered with`);
    }
    const report = await drill(archive.stream, ctx.config.workDir, ctx.config.rootSecret, { expectedSha256: archive.sidecarSha256 });
    outcome = record({ ok: true, sha256: report.sha256, records: report.storeCheck.records, error: null });
    ctx.log.info({ key, records: outcome.records, durationMs: outcome.durationMs }, 'restore drill passed');
  } catch (err) {
    if (err instanceof S3Failure && err.retryable) throw err;
    outcome = record({ ok: false, sha256: null, records: null, error: (err as Error).message });
    ctx.log.error({ key, reason: outcome.error }, 'restore drill FAILED: this backup does not restore');
  }
  await bucket.recordVerification(outcome).catch((err: unknown) => ctx.log.error({ key, err: (err as Error).message }, 'could not write the drill record beside the backup'));
  await ctx.ledger.recordVerification(outcome);
  if (!outcome.ok) throw new UnrecoverableError(`restore drill of ${key} failed: ${outcome.error ?? 'unknown reason'}`);
  return outcome;
}

async function newestCompleteBackup(bucket: BackupBucket): Promise<string> {
  const newest = (await bucket.list()).find((object) => object.complete);
  if (!newest) throw new UnrecoverableError(`there is no complete backup under s3://${bucket.bucket}/${bucket.destination.prefix} to verify`);
  return newest.key;
}

class DrillRefused extends Error {}
