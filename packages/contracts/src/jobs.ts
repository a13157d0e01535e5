import type { DestinationUpdate, PublicDestination } from './destination.js';
import type { SealedForWorker } from './sealed-transport.js';

export type BackupTrigger = 'api' | 'schedule' | 'cli';

export interface BackupJobData {
  trigger: BackupTrigger;
  /** Token name (api) or node id (schedule) that asked for it. */
  requestedBy: string;
  /** Key of the attempt in progress: a retry after a crash removes what it left at the destination. */
  attemptKey?: string;
}

export type BackupPhase = 'queued' | 'checkpoint' | 'upload' | 'commit' | 'done';

export interface BackupProgress {
  phase: BackupPhase;
  /** Checkpoint bytes archived so far. */
  bytesDone: number;
  /** Checkpoint bytes to archive (known once the checkpoint is taken). */
  bytesExpected: number | null;
  /** Compressed bytes sent to S3 so far. */
  bytesUploaded: number;
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
  /** SHA-256 (hex) of the whole .tar.gz object. */
  sha256: string;
  /** Size of the .tar.gz object in bytes. */
  size: number;
  sse: string;
  records: StoreCounts;
  /** Size of the checkpoint that was archived, before compression. */
  checkpointBytes: number;
  writerPauseMs: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
}

export type ControlJobData =
  | { op: 'config.get' }
  | { op: 'config.put'; update: Omit<DestinationUpdate, 'secretKey'>; sealedSecretKey?: SealedForWorker }
  | { op: 'objects.list' };

export interface BackupObject {
  key: string;
  size: number;
  lastModified: string;
  /** From the sidecar; null when the archive has none (incomplete: not a backup). */
  sha256: string | null;
  complete: boolean;
}

export interface ConfigResult {
  config: PublicDestination | null;
}

export interface ObjectsResult {
  bucket: string;
  prefix: string;
  objects: BackupObject[];
}
