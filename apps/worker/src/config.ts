import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { booleanSetting, choiceSetting, DRILL_SOURCES, integerSetting, readSharedSettings, type DrillSource, type SharedSettings } from '@chango/contracts';
import { s3TimeoutsFromEnv, UPLOAD_PART_BYTES, type S3Timeouts } from '@chango/s3';
import { CREDENTIAL_NAMES, credentialLabel, loadIdentityFile, oneSource, systemdCredential } from '@chango/security';
import { DEFAULT_DATA_DIR, loadRootSecret } from '@chango/state';

/** This service's version, from the worker's package.json. */
export const SERVICE_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface WorkerConfig extends SharedSettings {
  dataDir: string;
  rootSecret: Buffer;
  /**
   * age identities that open archives encrypted to offline recipients
   * (CHANGO_AGE_IDENTITY_FILE, or the systemd credential age-identity): with them a drill of such an archive restores
   * it in full; without (the default, and the point of offline recipients)
   * it can only check the stored bytes against the sidecar.
   */
  ageIdentities: string[];
  /** Where checkpoints are staged while archived; stale ones are removed at start. */
  workDir: string;
  nodeId: string;
  gzipLevel: number;
  /** CPU priority of the worker's threads (CHANGO_WORKER_NICE, 0–19, default 10; 0: as started): see priority.ts. */
  nice: number;
  /** Recorded in each manifest as chango.version: the Chango release this master runs. */
  changoVersion: string;
  /** Multipart part size for uploads (S3's minimum is 5 MiB). */
  partBytes: number;
  /** Bounds of every S3 call (connect, idle, per call, minimum transfer rate): CHANGO_S3_*_TIMEOUT_MS, CHANGO_S3_MIN_BYTES_PER_SEC. */
  s3Timeouts: S3Timeouts;
  /** BullMQ job lock: a worker that dies holding a job loses it after about this long. */
  lockDurationMs: number;
  /** Leader lease; a leader that stops or hangs is replaced within about 4/3 of it. */
  leaderLeaseMs: number;
  /** Run a restore drill after every scheduled backup. */
  verifyScheduledBackups: boolean;
  /** Where that drill downloads the backup: the primary destination, or the second copy (CHANGO_VERIFY_SCHEDULED_FROM). */
  verifyScheduledFrom: DrillSource;
  /** The watchdog: a backup or drill running longer is stopped and failed (0: derive from the state's size, see deadlines.ts). */
  jobDeadlineMs: number;
  jobDeadlineFloorMs: number;
}

/** Reads the worker's settings from the environment; a bad value stops the start with its name. */
export function readWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const dataDir = env.CHANGO_DATA_DIR || DEFAULT_DATA_DIR;
  return {
    ...readSharedSettings(env),
    dataDir,
    rootSecret: loadRootSecret(env),
    ageIdentities: loadAgeIdentities(ageIdentityFile(env.CHANGO_AGE_IDENTITY_FILE, systemdCredential(env, CREDENTIAL_NAMES.ageIdentity))),
    workDir: env.CHANGO_WORK_DIR || join(dataDir, '.backup-work'),
    nodeId: env.CHANGO_NODE_ID || hostname(),
    gzipLevel: integerSetting(env, 'CHANGO_GZIP_LEVEL', 6, 1, 9),
    nice: integerSetting(env, 'CHANGO_WORKER_NICE', 10, 0, 19),
    changoVersion: env.CHANGO_VERSION || SERVICE_VERSION,
    partBytes: integerSetting(env, 'CHANGO_S3_PART_BYTES', UPLOAD_PART_BYTES, 5 * 1024 * 1024, 1024 ** 3),
    s3Timeouts: s3TimeoutsFromEnv(env),
    lockDurationMs: integerSetting(env, 'CHANGO_JOB_LOCK_MS', 30_000, 1_000, 600_000),
    leaderLeaseMs: integerSetting(env, 'CHANGO_LEADER_LEASE_MS', 15_000, 1_000, 120_000),
    verifyScheduledBackups: booleanSetting(env, 'CHANGO_VERIFY_SCHEDULED', true),
    verifyScheduledFrom: choiceSetting(env, 'CHANGO_VERIFY_SCHEDULED_FROM', DRILL_SOURCES, 'primary'),
    jobDeadlineMs: integerSetting(env, 'CHANGO_JOB_DEADLINE_MS', 0, 0, 7 * 24 * 3600_000),
    jobDeadlineFloorMs: integerSetting(env, 'CHANGO_JOB_DEADLINE_FLOOR_MS', 600_000, 1_000, 24 * 3600_000),
  };
}

/**
 * The age identity file for drills: the one CHANGO_AGE_IDENTITY_FILE names (`variable`), or the systemd
 * credential age-identity (`credential`, its path when the unit passed one); undefined when neither is
 * given (drills of encrypted archives then check their bytes only). Both is refused: which key is meant?
 */
export function ageIdentityFile(variable: string | undefined, credential: string | undefined): string | undefined {
  return oneSource('age identity file', [
    { label: 'CHANGO_AGE_IDENTITY_FILE', value: variable },
    { label: credential ? credentialLabel(CREDENTIAL_NAMES.ageIdentity, credential) : '', value: credential },
  ])?.value;
}

function loadAgeIdentities(file: string | undefined): string[] {
  return file ? loadIdentityFile(file) : [];
}
