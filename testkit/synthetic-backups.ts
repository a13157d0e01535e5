import { createHash, randomUUID } from 'node:crypto';
import type * as Minio from 'minio';
import { mapLimited } from '@chango/s3';
import { makeBackupKey, sidecarBody, sidecarKey, verifyRecordKey, type VerificationRecord } from '@chango/contracts';

/**
 * Fills a destination with many committed backups fast, for tests and the
 * scale bench: tiny archives (not restorable: their bytes are a label) with
 * real sidecars holding their checksum and the checksum in the object's
 * metadata, as a worker writes them, plus drill records where asked. Written
 * straight to S3, many at a time.
 */
export interface SyntheticBackupsOptions {
  prefix: string;
  count: number;
  /** The newest one's time; the others `spacingMs` apart before it. */
  newest: Date;
  spacingMs: number;
  /** Every n-th backup (counting from the oldest) gets a drill record that passed; 0 for none. */
  verifiedEvery?: number;
  /** Leave these (indexes from the oldest) without a sidecar: archives of attempts that never committed. */
  uncommitted?: ReadonlySet<number>;
  /** PUTs under way at once. */
  concurrency?: number;
  /**
   * Lock each object (S3 Object Lock, PutObjectRetention on the version just written) in `mode`
   * until `forMs` after its own PUT: a bucket with Object Lock enabled only. S3 refuses a
   * retain-until date in the past, so an expired lock is made by waiting out a short one.
   */
  objectLock?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; forMs: number };
}

export async function writeSyntheticBackups(s3: Minio.Client, bucket: string, options: SyntheticBackupsOptions): Promise<string[]> {
  const { prefix, count, newest, spacingMs } = options;
  const keys = Array.from({ length: count }, (_, i) => makeBackupKey(prefix, new Date(newest.getTime() - (count - 1 - i) * spacingMs), randomUUID()));
  const puts: (() => Promise<unknown>)[] = [];
  const lock = options.objectLock;
  const put = (name: string, body: Buffer, metadata: Record<string, string> = {}) => async () => {
    const written = await s3.putObject(bucket, name, body, body.length, metadata);
    if (!lock) return;
    const retention = { mode: lock.mode, retainUntilDate: new Date(Date.now() + lock.forMs).toISOString(), versionId: written.versionId ?? '' };
    await s3.putObjectRetention(bucket, name, retention);
  };
  keys.forEach((key, i) => {
    const body = Buffer.from(`synthetic backup ${i} of ${count}\n`);
    const sha256 = createHash('sha256').update(body).digest('hex');
    puts.push(put(key, body, { 'Content-Type': 'application/gzip', 'chango-sha256': sha256 }));
    if (options.uncommitted?.has(i)) return;
    puts.push(put(sidecarKey(key), Buffer.from(sidecarBody(key, sha256))));
    if (options.verifiedEvery && i % options.verifiedEvery === 0) {
      const record: VerificationRecord = { key, ok: true, kind: 'restore', source: 'primary', verifiedAt: new Date().toISOString(), durationMs: 1, nodeId: 'synthetic', sha256, records: { kms: 1, iam: 1, metadata: 1 }, error: null };
      puts.push(put(verifyRecordKey(key), Buffer.from(JSON.stringify(record))));
    }
  });
  await mapLimited(puts, options.concurrency ?? 32, (put) => put());
  return keys;
}
