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

export type BackupPhase = 'queued' | 'checkpoint' | 'archive' | 'upload' | 'commit' | 'done';

export interface BackupProgress {
  phase: BackupPhase;
  /**
   * Bytes of this phase done: while archiving, .tar.gz bytes written to the
   * local spool file; while uploading, bytes sent to S3.
   */
  bytesDone: number;
  /**
   * While archiving, the checkpoint's size (RocksDB files are already
   * compressed, so the archive comes out close to it); from the upload on, the
   * archive's exact size.
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

/**
 * What a control job answers. Requests the worker must turn down (a field it
 * cannot accept, nothing configured, S3 refusing a listing) are answers, not
 * job failures, so the api can pass the status and the field on as they are.
 */
export type ControlOutcome<T> =
  | { ok: true; value: T }
  | { ok: false; status: 400 | 404 | 502; error: string; message: string; field?: string };
