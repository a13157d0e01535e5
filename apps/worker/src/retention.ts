import { appliedRetention, objectLockOf, type BackupObject, type DestinationInventory, type RetentionPolicy } from '@chango/contracts';
import { firstArchiveBound, newestFirst, type BackupBucket, type ListedArchive } from '@chango/s3';
import type { Logger } from '@chango/telemetry';
import type { LeaderLease } from './leader-lease.js';
import { planRetention, type RetentionDecision } from './retention-plan.js';
import type { RunLedger } from './run-ledger.js';

export interface RetentionContext {
  /** Confirmed right before deleting: only the leader deletes. */
  lease: Pick<LeaderLease, 'confirm'>;
  /** Where deletions and the count are recorded (the primary's: the run ledger). */
  ledger: Pick<RunLedger, 'recordRetentionDeletions' | 'recordRetentionKeptLocked' | 'recordInventory'>;
  log: Logger;
  /** The backup just committed: kept whatever the plan says (it is the newest anyway). */
  keep: string;
}

/**
 * At most this many backups are deleted per pass (one DeleteObjects request
 * holds 1,000 keys: archive, sidecar and drill record of each). A rule that
 * suddenly dooms thousands catches up over the next backups.
 */
export const MAX_DELETIONS_PER_PASS = 300;

/** What a retention pass did: the archives it deleted, and how many backups past the rule S3 Object Lock kept. */
export interface RetentionOutcome {
  deleted: string[];
  keptLocked: number;
}

/** At most this many keys of locked backups go into the pass's log line (the count is whole). */
const LOGGED_LOCKED_KEYS = 20;

/** Per destination: where the counting walk stands, and what it counted so far. */
interface Walk {
  next: string;
  archives: number;
  committed: number;
  bytes: number;
}
const walks = new Map<string, Walk>();

/**
 * Applies the destination's retention after a backup committed (never after
 * one failed: the caller only gets here on success), at a cost that does not
 * grow with the number of backups kept:
 *
 * - the newest archives the rule keeps are found by a seek from the newest
 *   end (keepLast N: the N newest committed; maxAgeDays: the newest) — a
 *   request or two for N up to a few hundred, N/330 for larger N;
 * - one page of a walk from the oldest end (one request) gives the candidates
 *   for deletion and, page by page over the passes, the inventory count and
 *   any archive left uncommitted for more than a day;
 * - a drill record is read (once per ETag) only when a candidate has one, to
 *   spare the newest backup that passed a drill.
 *
 * The plan is the pure planRetention applied to what was seen: the newest
 * window is contiguous from the newest, so "among the N newest" is exact, and
 * a backup the walk sees beyond it is older than all of them. What is not
 * seen is never deleted; the newest verified backup may be kept one pass too
 * long when a newer one lies between the window and the walk (keeping more is
 * the safe side). Lists, plans, confirms the lease, deletes. A failure here is
 * logged and leaves the new backup standing: returns the deleted keys.
 *
 * With S3 Object Lock, a backup the rule dooms but whose lock has certainly
 * not expired is not even tried (retention-plan.ts, lockedAtLeastUntil), one
 * the destination refuses as locked is kept whole (BackupBucket.remove
 * deletes versions, archive first); both are counted and logged as kept with
 * reason "locked", and deleted by a later pass once their date has passed.
 */
export async function applyRetention(bucket: BackupBucket, ctx: RetentionContext): Promise<RetentionOutcome> {
  const { destination } = bucket;
  const applied = appliedRetention(destination.retention);
  try {
    const newest = await newestKept(bucket, applied.rule);
    const walkId = bucket.destinationId;
    const walk = newest?.reachedOldest ? undefined : (walks.get(walkId) ?? { next: firstArchiveBound(destination.prefix), archives: 0, committed: 0, bytes: 0 });
    const walked = walk ? await bucket.walk(walk.next) : undefined;

    const seen = new Map<string, ListedArchive>();
    for (const archive of [...(newest?.archives ?? []), ...(walked?.archives ?? [])]) seen.set(archive.key, archive);
    const archives = [...seen.values()].sort(newestFirst);
    const { doomed, locked } = await planDeletions(bucket, archives, applied.rule, ctx.keep);

    let deleted: string[] = [];
    const keptLocked = [...locked];
    if (doomed.length > 0) {
      if (await ctx.lease.confirm()) {
        const removal = await bucket.remove(doomed.map((decision) => decision.key));
        const gone = new Set(removal.deleted);
        for (const decision of doomed) if (gone.has(decision.key)) ctx.log.info({ key: decision.key, reasons: decision.reasons }, 'retention: deleted backup');
        for (const key of removal.locked) {
          keptLocked.push({ key, reasons: ['locked: the destination refused to delete it (AccessDenied: Object Lock still holds it, or the access key lacks s3:DeleteObjectVersion)'] });
        }
        for (const key of removal.lingering) {
          ctx.log.warn({ key }, 'retention: this object of a deleted backup is still under Object Lock: hidden behind a delete marker, its version stays until its retain-until date (a lifecycle rule with NoncurrentVersionExpiration removes it then)');
        }
        for (const { key, reason } of removal.failed) ctx.log.error({ key, err: reason }, 'retention: the destination refused to delete this backup: left in place');
        await ctx.ledger.recordRetentionDeletions(removal.deleted.length);
        deleted = removal.deleted;
      } else {
        ctx.log.warn({ wouldDelete: doomed.length }, 'retention skipped: this worker is no longer the leader');
      }
    }

    await ctx.ledger.recordRetentionKeptLocked(keptLocked.length);
    if (keptLocked.length > 0) {
      ctx.log.info(
        { keptLocked: keptLocked.length, reason: 'locked', keys: keptLocked.slice(0, LOGGED_LOCKED_KEYS).map((decision) => decision.key), reasons: keptLocked[0]?.reasons },
        'retention: kept backup(s) past the rule: S3 Object Lock still holds them; a later pass deletes them once their retention has passed',
      );
    }

    const gone = new Set(deleted);
    if (!walk || !walked) {
      // The seek saw every archive: the count is whole now.
      walks.delete(walkId);
      await ctx.ledger.recordInventory(inventoryOf(archives.filter((archive) => !gone.has(archive.key)), applied));
    } else {
      const counted = count(walk, walked.archives.filter((archive) => !gone.has(archive.key)));
      if (walked.next === null) {
        walks.delete(walkId);
        await ctx.ledger.recordInventory({ ...counted, countedAt: new Date().toISOString(), retention: applied });
      } else {
        walks.set(walkId, { ...counted, next: walked.next });
      }
    }
    return { deleted, keptLocked: keptLocked.length };
  } catch (err) {
    ctx.log.error({ err: (err as Error).message }, 'retention failed: old backups were left in place (the new one is committed)');
    return { deleted: [], keptLocked: 0 };
  }
}

/**
 * The newest archives a rule keeps, found from the newest end; undefined when
 * the rule keeps everything. An applied rule (appliedRetention) is keepAll or
 * has keepLast or maxAgeDays: "no rule" has become the default by then.
 */
async function newestKept(bucket: BackupBucket, rule: RetentionPolicy) {
  if (rule.keepAll) return undefined;
  return bucket.seekNewest({ need: rule.keepLast ?? 1, counts: (archive) => archive.sidecar !== null });
}

/**
 * What to delete among the archives seen (newest first), and what the rule
 * would delete but Object Lock still holds. First planned as if none had
 * passed a drill; only when a doomed one has a drill record are records read,
 * newest first, until one that passed — the one spared.
 */
async function planDeletions(bucket: BackupBucket, archives: readonly ListedArchive[], rule: RetentionPolicy, keep: string): Promise<{ doomed: RetentionDecision[]; locked: RetentionDecision[] }> {
  const objects: BackupObject[] = archives.map((archive) => ({
    key: archive.key,
    size: archive.size,
    lastModified: archive.lastModified.toISOString(),
    sha256: null,
    // For retention a sidecar that exists commits the backup; whether it holds the right checksum is a restore's question.
    complete: archive.sidecar !== null,
    verify: null,
  }));
  const lock = objectLockOf(bucket.destination);
  const now = new Date();
  const plan = () => {
    const planned = planRetention(objects, rule, bucket.destination.prefix, now, lock);
    return { doomed: planned.remove.filter((decision) => decision.key !== keep), locked: planned.keep.filter((decision) => decision.lockedUntil !== undefined) };
  };
  let planned = plan();
  const byKey = new Map(archives.map((archive) => [archive.key, archive]));
  // A locked one may be the newest that passed a drill: kept for that, not counted as kept by the lock.
  if ([...planned.doomed, ...planned.locked].some((decision) => byKey.get(decision.key)?.verifyRecord)) {
    for (const object of objects) {
      const archive = byKey.get(object.key);
      if (!archive?.verifyRecord || !object.complete) continue;
      object.verify = (await bucket.describe([archive]))[0]?.verify ?? null;
      if (object.verify?.ok) break;
    }
    planned = plan();
  }
  const { doomed, locked } = planned;
  // Oldest first (keys sort by time), so a capped pass takes the oldest and the rest follow in later passes.
  return { doomed: doomed.sort((a, b) => (a.key < b.key ? -1 : 1)).slice(0, MAX_DELETIONS_PER_PASS), locked };
}

function count(so: Omit<Walk, 'next'>, archives: readonly ListedArchive[]): Omit<Walk, 'next'> {
  return {
    archives: so.archives + archives.length,
    committed: so.committed + archives.filter((archive) => archive.sidecar).length,
    bytes: so.bytes + archives.reduce((sum, archive) => sum + archive.size, 0),
  };
}

function inventoryOf(archives: readonly ListedArchive[], retention: DestinationInventory['retention']): DestinationInventory {
  return { ...count({ archives: 0, committed: 0, bytes: 0 }, archives), countedAt: new Date().toISOString(), retention };
}
