import type { DrillKind } from './jobs.js';

/** A backup at the destination as a listing shows it, and a page of them. */
export interface BackupObject {
  key: string;
  size: number;
  lastModified: string;
  /** From the sidecar; null when the archive has none (incomplete: not a backup). */
  sha256: string | null;
  complete: boolean;
  /** The last restore drill of it (`<key>.verify.json`), if any. */
  verify: { ok: boolean; kind: DrillKind; verifiedAt: string } | null;
}

export interface ObjectsResult {
  bucket: string;
  prefix: string;
  /** Newest first, at most `limit`. */
  objects: BackupObject[];
  /** The cursor of the next (older) page, for `cursor`; null when this page holds the oldest. */
  nextCursor: string | null;
}
