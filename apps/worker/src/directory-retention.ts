import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { appliedRetention, type BackupObject, type RetentionPolicy } from '@chango/contracts';
import { monthOf, type DirectoryArchives, type DirectoryEntry } from '@chango/directory-archives';
import { MAX_DELETIONS_PER_PASS } from './retention.js';
import { INCOMPLETE_GRACE_MS, planRetention } from './retention-plan.js';

/**
 * Retention at a directory copy target, at a cost set by the rule and the
 * backups of a month, not by the history: the newest month folders are read
 * until they hold what the rule keeps (keepLast N: N committed copies; else the
 * newest), the oldest month folder gives the candidates, and the pure
 * planRetention decides over what was seen — the newest window is contiguous
 * from the newest, so "among the N newest" is exact, and anything in the
 * oldest month beyond it is older than all of them. Partial files (copies a
 * crash cut short) older than a day go too. At most MAX_DELETIONS_PER_PASS per
 * pass, the oldest first. Returns the paths removed.
 */
export async function applyDirectoryRetention(archives: DirectoryArchives, retention: RetentionPolicy | null, keep: string, now = new Date()): Promise<string[]> {
  const { rule } = appliedRetention(retention);
  if (rule.keepAll) return [];
  const months = await archives.monthEntriesFromOldest();
  if (!months) return [];
  const { month: oldest, entries } = months.oldest;

  const seen = new Map<string, DirectoryEntry>();
  let committed = 0;
  for (const month of [...months.all].reverse()) {
    for (const entry of (await archives.monthEntries(month)).archives) {
      seen.set(entry.name, entry);
      if (entry.committed) committed += 1;
    }
    if (committed >= (rule.keepLast ?? 1)) break;
  }
  const { archives: oldestArchives, partials } = entries;
  for (const entry of oldestArchives) seen.set(entry.name, entry);
  // Partial files first, so the month folder can go once its last copy does.
  const stale = [];
  for (const name of partials) {
    const info = await stat(join(archives.root, oldest, name)).catch(() => undefined);
    if (info && now.getTime() - info.mtimeMs > INCOMPLETE_GRACE_MS) stale.push(name);
  }
  const removedPartials = await archives.removePartials(oldest, stale);

  const objects = await Promise.all([...seen.values()].map((entry) => describe(archives.root, entry)));
  const doomed = planRetention(objects, rule, '', now)
    .remove.map((decision) => decision.key)
    .filter((name) => name !== keep)
    .sort()
    .slice(0, MAX_DELETIONS_PER_PASS);
  await archives.remove(doomed);
  return [...doomed.map((name) => join(archives.root, monthOf(name), name)), ...removedPartials];
}

/** What the planner needs of an entry: a committed copy's time is in its name; an uncommitted one's age is its file's. */
async function describe(root: string, entry: DirectoryEntry): Promise<BackupObject> {
  const lastModified = entry.committed ? new Date() : ((await stat(join(root, monthOf(entry.name), entry.name)).catch(() => undefined))?.mtime ?? new Date());
  return { key: entry.name, size: 0, lastModified: lastModified.toISOString(), sha256: null, complete: entry.committed, verify: null };
}
