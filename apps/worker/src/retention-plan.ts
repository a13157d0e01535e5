import { parseBackupKey, type BackupObject, type ObjectLock, type RetentionPolicy } from '@chango/contracts';

/** Archives without a sidecar (never committed) are removed once they are this old: no backup still writing takes a day. */
export const INCOMPLETE_GRACE_MS = 24 * 60 * 60 * 1000;

export interface RetentionDecision {
  key: string;
  /** Why it is kept or removed, in words for the log. */
  reasons: string[];
  /** Set on a backup the rules would remove but S3 Object Lock still holds (reason "locked"): until when, at least. */
  lockedUntil?: string;
}

export interface RetentionPlan {
  remove: RetentionDecision[];
  keep: RetentionDecision[];
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * How retention knows that a backup is still locked, without asking: every
 * piece of a backup (archive, sidecar, drill record) is locked when it is
 * written, for the destination's days from then, and it is written after the
 * backup's time in its key. So key time + days is a lower bound of every
 * piece's retain-until date: before it, deleting is certainly refused and is
 * not tried (no request at all, whatever the number of locked backups). After
 * it, deletion is tried, and a refusal by the destination (the lock is a
 * little longer than the bound, or days were lowered since it was written) is
 * counted as locked too, not as a failure (BackupBucket.remove). A lock made
 * longer since only means trying a little early. Asking each object for its
 * retention (GetObjectRetention) would cost a request per piece per pass.
 */
export function lockedAtLeastUntil(taken: Date, lock: ObjectLock): Date {
  return new Date(taken.getTime() + lock.days * DAY_MS);
}

/**
 * Which backups at a destination to remove. Pure: the worker lists, this
 * decides, the worker deletes. A backup is kept when ANY rule keeps it (like
 * restic's --keep-last/--keep-within):
 *   - it is among the `keepLast` newest;
 *   - it is younger than `maxAgeDays`;
 *   - it is the newest backup (always);
 *   - it is the newest backup that passed a restore drill (always);
 * and with no rule set (or `keepAll`), every backup is kept — the worker
 * passes the default rule (appliedRetention) for a destination that chose none. Only objects that parse as our
 * archive keys under `prefix` are ever considered; incomplete ones (no
 * sidecar) are removed once older than a day, whatever the policy. With S3
 * Object Lock (`lock`), one the rules would remove is kept while it is
 * certainly still locked (see lockedAtLeastUntil), its reason "locked".
 */
export function planRetention(objects: readonly BackupObject[], policy: RetentionPolicy | null, prefix: string, now: Date, lock: ObjectLock | null = null): RetentionPlan {
  const plan: RetentionPlan = { remove: [], keep: [] };
  const remove = (key: string, taken: Date, reasons: string[]) => {
    const until = lock ? lockedAtLeastUntil(taken, lock) : undefined;
    if (lock && until && now < until) {
      plan.keep.push({ key, reasons: [`locked: Object Lock ${lock.mode} holds it until at least ${until.toISOString()} (${reasons.join(', ')})`], lockedUntil: until.toISOString() });
    } else {
      plan.remove.push({ key, reasons });
    }
  };
  const ours = objects
    .map((object) => ({ object, parsed: parseBackupKey(prefix, object.key) }))
    .filter((entry): entry is { object: BackupObject; parsed: NonNullable<typeof entry.parsed> } => entry.parsed !== undefined);

  for (const { object, parsed } of ours.filter((entry) => !entry.object.complete)) {
    const age = now.getTime() - new Date(object.lastModified).getTime();
    if (age > INCOMPLETE_GRACE_MS) remove(object.key, parsed.timestamp, ['incomplete (no sidecar) and older than a day']);
    else plan.keep.push({ key: object.key, reasons: ['incomplete but recent: it may still be committing'] });
  }

  const complete = ours.filter((entry) => entry.object.complete).sort((a, b) => b.parsed.timestamp.getTime() - a.parsed.timestamp.getTime());
  const newestVerified = complete.find((entry) => entry.object.verify?.ok)?.object.key;
  const keepLast = policy?.keepLast;
  const maxAgeDays = policy?.maxAgeDays;
  complete.forEach(({ object, parsed }, index) => {
    const reasons: string[] = [];
    if (index === 0) reasons.push('newest backup');
    if (object.key === newestVerified) reasons.push('newest backup that passed a restore drill');
    if (keepLast === undefined && maxAgeDays === undefined) reasons.push(policy?.keepAll ? 'keepAll is set' : 'no retention rule set');
    if (keepLast !== undefined && index < keepLast) reasons.push(`among the ${keepLast} newest`);
    const ageDays = (now.getTime() - parsed.timestamp.getTime()) / DAY_MS;
    if (maxAgeDays !== undefined && ageDays <= maxAgeDays) reasons.push(`younger than ${maxAgeDays} days`);
    if (reasons.length > 0) {
      plan.keep.push({ key: object.key, reasons });
      return;
    }
    const why: string[] = [];
    if (keepLast !== undefined) why.push(`not among the ${keepLast} newest`);
    if (maxAgeDays !== undefined) why.push(`${Math.floor(ageDays)} days old (limit ${maxAgeDays})`);
    remove(object.key, parsed.timestamp, why);
  });
  return plan;
}
