import { parseBackupKey, type BackupObject, type RetentionPolicy } from '@chango/contracts';

/** Archives without a sidecar (never committed) are removed once they are this old: no backup still writing takes a day. */
export const INCOMPLETE_GRACE_MS = 24 * 60 * 60 * 1000;

export interface RetentionDecision {
  key: string;
  /** Why it is kept or removed, in words for the log. */
  reasons: string[];
}

export interface RetentionPlan {
  remove: RetentionDecision[];
  keep: RetentionDecision[];
}

const DAY_MS = 24 * 60 * 60 * 1000;

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
 * sidecar) are removed once older than a day, whatever the policy.
 */
export function planRetention(objects: readonly BackupObject[], policy: RetentionPolicy | null, prefix: string, now: Date): RetentionPlan {
  const plan: RetentionPlan = { remove: [], keep: [] };
  const ours = objects
    .map((object) => ({ object, parsed: parseBackupKey(prefix, object.key) }))
    .filter((entry): entry is { object: BackupObject; parsed: NonNullable<typeof entry.parsed> } => entry.parsed !== undefined);

  for (const { object } of ours.filter((entry) => !entry.object.complete)) {
    const age = now.getTime() - new Date(object.lastModified).getTime();
    if (age > INCOMPLETE_GRACE_MS) plan.remove.push({ key: object.key, reasons: ['incomplete (no sidecar) and older than a day'] });
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
    plan.remove.push({ key: object.key, reasons: why });
  });
  return plan;
}
