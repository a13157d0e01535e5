import type { DestinationUpdateWithoutSecrets, DrillSource, ObjectsPage, PublicDestination } from './destination.js';
import type { AppliedRetention } from './retention.js';
import type { SealedForWorker } from '@chango/security';

export type BackupTrigger = 'api' | 'schedule';

export interface BackupJobData {
  trigger: BackupTrigger;
  /** Token name (api) or node id (schedule) that asked for it. */
  requestedBy: string;
  /**
   * The attempt in progress, written before anything reaches the destination:
   * a worker that takes the job over after a crash either finds it committed
   * (its sidecar exists) and completes the job as that success, or removes
   * what it left.
   */
  attempt?: BackupAttempt;
}

export interface BackupAttempt {
  key: string;
  backupId: string;
  startedAt: string;
  /** When the job's watchdog stops it (derived from the state's size, see README). */
  deadlineAt: string;
  /** Written just before the sidecar: what the backup is, should the worker die between the sidecar and the job's completion. */
  committing?: CommittingFacts;
}

export interface CommittingFacts {
  sha256: string;
  size: number;
  records: StoreCounts;
  checkpointBytes: number;
  writerPauseMs: number;
}

/** 'verify' is the single phase of a restore drill job, 'copy' the one of a second copy (then 'done'). */
export type BackupPhase = 'queued' | 'checkpoint' | 'upload' | 'commit' | 'done' | 'verify' | 'copy';

export interface BackupProgress {
  phase: BackupPhase;
  /**
   * Bytes of this phase done: while uploading (the archive is made as it is
   * uploaded), checkpoint bytes read into the archive; from the commit on,
   * the archive's bytes. A copy or a drill counts the archive's bytes moved.
   */
  bytesDone: number;
  /**
   * While uploading, the checkpoint's size; from the commit on, the archive's
   * exact size (null when not known).
   */
  bytesExpected: number | null;
}

export interface StoreCounts {
  kms: number;
  iam: number;
  metadata: number;
}

export interface BackupResult {
  backupId: string;
  bucket: string;
  key: string;
  sidecarKey: string;
  /** SHA-256 (hex) of the whole object as stored (.tar.gz, or .tar.gz.age when encrypted). */
  sha256: string;
  /** Size of the stored object in bytes. */
  size: number;
  sse: string;
  /** Whether the archive is encrypted to offline age recipients (its key ends in .tar.gz.age). */
  encrypted: boolean;
  records: StoreCounts;
  /** Size of the checkpoint that was archived, before compression. */
  checkpointBytes: number;
  trigger: BackupTrigger;
  /** The worker (master host) that made it. */
  nodeId: string;
  /** Keys retention removed after this backup (archives; their sidecars went with them). */
  retentionDeleted: string[];
  /**
   * Backups retention would have removed after this backup but kept because
   * S3 Object Lock still holds them (reason "locked"): deleted by a later
   * pass once their retention has passed. 0 without Object Lock.
   */
  retentionKeptLocked: number;
  writerPauseMs: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
}

/** What a copy job carries: the committed backup to copy, as the backup recorded it. */
export interface CopyJobData {
  /** The archive's key at the primary destination. */
  key: string;
  sha256: string;
  size: number;
  backupId: string;
  /** The trigger of the backup copied. */
  trigger: BackupTrigger;
  /** The worker that queued it (the one that made the backup). */
  requestedBy: string;
}

/** A second copy committed at its target (CopyResult), or a copy job with nothing to do. */
export interface CopyResult {
  /** The target, as a URL: `<endpoint>/<bucket>/<prefix>` for S3, `file://<path>` for a directory (the metrics' `destination` label). */
  destination: string;
  /** Where the copy is: its object key, or its path under the directory. */
  key: string;
  sha256: string;
  size: number;
  /** Copies retention removed at the target after this one. */
  retentionDeleted: string[];
  startedAt: string;
  finishedAt: string;
  durationMs: number;
}

/** A copy job that found no copy target configured any more: completes without copying. */
export interface SkippedCopy {
  skipped: true;
  reason: string;
}

export type CopyOutcome = CopyResult | SkippedCopy;

/** What any job of the backup queue carries, and what it answers: a backup, a drill or a second copy. */
export type BackupQueueData = BackupJobData | VerifyJobData | CopyJobData;
export type BackupQueueResult = BackupOutcome | VerificationRecord | CopyOutcome;

/** One copy as status remembers it. */
export interface CopyRecord {
  jobId: string;
  /** The backup copied (its key at the primary destination). */
  key: string;
  /** Where it went (CopyResult.key); null when the copy failed. */
  copyKey: string | null;
  finishedAt: string;
  durationMs: number;
  error: string | null;
}

/** Per copy target: the last copy that succeeded, and the last that failed for good. */
export interface CopyTargetStatus {
  destination: string;
  lastSuccess: CopyRecord | null;
  lastFailure: CopyRecord | null;
}

/** A scheduled tick that found a backup running (or one made since it fired) completes without making a second one. */
export interface SkippedBackup {
  skipped: true;
  reason: string;
  /** When the tick fired. */
  tickAt: string;
  /** The backup that covers this tick. */
  coveredBy: { jobId: string; key: string };
}

export type BackupOutcome = BackupResult | SkippedBackup;

export interface VerifyJobData {
  /** Where to download it: the primary destination (default; jobs queued before this field existed) or the second copy. */
  from?: DrillSource;
  /** The archive to drill (its sidecar must exist); null for the newest complete backup. */
  key: string | null;
  requestedBy: string;
}

/**
 * Which drill ran:
 * - `restore`: the archive was extracted, every file checked against the
 *   manifest, the stores opened with the root secret and every secret
 *   decrypted — it restores;
 * - `checksum`: the archive is encrypted to offline recipients and the worker
 *   holds no identity to open it (the point of offline recipients): the
 *   stored bytes were read and match the sidecar — they are the bytes the
 *   backup wrote, which says nothing about whether they restore.
 */
export type DrillKind = 'restore' | 'checksum';

/**
 * The outcome of a restore drill: written beside the archive as `<key>.verify.json`
 * (so it travels with the backup, and retention can tell which backups are proven)
 * and kept in Redis as the last one for status and metrics.
 */
export interface VerificationRecord {
  key: string;
  ok: boolean;
  /** Which drill ran (records written before drills had kinds were restore drills). */
  kind: DrillKind;
  /** Where the drilled archive was downloaded from (records written before drills could read the copy: primary). */
  source: DrillSource;
  verifiedAt: string;
  durationMs: number;
  /** Node id of the worker that ran the drill. */
  nodeId: string;
  sha256: string | null;
  /** Records found in the restored stores (equal to the manifest's when ok); null for a checksum drill. */
  records: StoreCounts | null;
  /** Why the drill failed, in words. */
  error: string | null;
}

/** A backup run as status and metrics remember it (last success, last failure). */
export interface RunRecord {
  jobId: string;
  trigger: BackupTrigger;
  nodeId: string;
  startedAt: string;
  finishedAt: string;
  key: string | null;
  sha256: string | null;
  size: number | null;
  durationMs: number;
  error: string | null;
}

export interface LeaderInfo {
  nodeId: string;
  /** Fencing token of its lease: grows by one each time leadership changes hands. */
  epoch: number;
  since: string;
}

/** `GET /admin/api/backup/status`. */
export interface BackupStatus {
  leader: LeaderInfo | null;
  workers: string[];
  schedule: { cron: string; timezone: string; nextRunAt: string | null } | null;
  lastSuccess: RunRecord | null;
  lastFailure: RunRecord | null;
  lastVerify: VerificationRecord | null;
  /** Per second-copy target (one today; a target no longer configured is dropped when the destination is saved). */
  lastCopy: CopyTargetStatus[];
  /** The backups at the destination as the leader last counted them, and the retention that applies; null before the first count. */
  destination: DestinationInventory | null;
}

/**
 * How many backups the destination holds, counted by the worker one listing
 * request per backup (a walk over the archives, oldest first), so counting
 * never makes a backup slower with more backups kept: with a few hundred
 * backups every count is whole, with 10,000 a count completes every ~30 backups.
 */
export interface DestinationInventory {
  /** Archives of ours under the prefix, committed or not. */
  archives: number;
  /** Of those, the ones with a sidecar: backups. */
  committed: number;
  bytes: number;
  /** When the count completed. */
  countedAt: string;
  retention: AppliedRetention;
}

export type ControlJobData =
  | { op: 'config.get' }
  | { op: 'config.put'; update: DestinationUpdateWithoutSecrets; sealedSecretKey?: SealedForWorker; sealedCopySecretKey?: SealedForWorker }
  | { op: 'objects.list'; page: ObjectsPage };

export interface ConfigResult {
  config: PublicDestination | null;
}

/**
 * What a control job answers. Requests the worker must turn down (a field it
 * cannot accept, nothing configured, S3 refusing a listing) are answers, not
 * job failures, so the api can pass the status and the field on as they are.
 */
export type ControlOutcome<T> =
  | { ok: true; value: T }
  | { ok: false; status: 400 | 404 | 502; error: string; message: string; field?: string };
