import { mapLimited } from './map-limited.js';
import { LOCK_REFUSAL_CODES } from './object-lock.js';

/**
 * Removing backups from a versioned bucket (every Object Lock bucket is one),
 * for real. Deleting by key there only adds a delete marker: the versions stay
 * and keep their bytes. So each backup's versions are listed (one request per
 * backup, prefix = its archive key: the archive, its sidecar and drill record
 * and their delete markers, never the whole bucket) and deleted by version id.
 *
 * Order, and why: the archive's versions go first; only a backup whose archive
 * is gone loses its sidecar and drill record. A backup whose archive is still
 * locked thus stays whole — restorable, and counted as kept — instead of
 * losing its commit marker. A sidecar or drill record still locked once its
 * archive is gone (a drill record written later is locked until later) is
 * hidden behind a delete marker, so nothing lists it, and left to its
 * retain-until date: a lifecycle rule with NoncurrentVersionExpiration removes
 * such versions then (README, "Object Lock").
 */

/** One version (or delete marker) of an object. */
export interface ObjectVersion {
  key: string;
  versionId: string;
  deleteMarker: boolean;
}

/** A deletion the destination refused. */
export interface Refusal {
  key: string;
  versionId?: string;
  code: string;
  message: string;
}

/** The requests a purge makes; each is one bounded call in BackupBucket. */
export interface PurgeIo {
  /** Every version and delete marker of objects whose key starts with `archiveKey` (one listing request). */
  versionsOf(archiveKey: string): Promise<ObjectVersion[]>;
  /** Deletes these versions (DeleteObjects with version ids); what was refused. Nothing to delete: not called. */
  deleteVersions(versions: readonly ObjectVersion[]): Promise<Refusal[]>;
  /** Adds a delete marker on each key (DeleteObjects without version ids); what was refused. */
  hide(keys: readonly string[]): Promise<Refusal[]>;
}

export interface PurgeOptions {
  /** The sidecar and drill record keys of an archive. */
  siblingsOf: (archiveKey: string) => string[];
  /**
   * What to do with an archive whose version is locked: `keep` it whole (retention:
   * a backup kept, reason locked), or `hide` it and its siblings behind delete
   * markers (a failed attempt's leftover: nobody must list it, and fighting the lock is pointless).
   */
  whenLocked: 'keep' | 'hide';
  /** Listing requests under way at once. */
  concurrency?: number;
}

export interface PurgeOutcome {
  /** Archives all of whose versions are gone (their siblings gone too, or hidden: see `lingering`). */
  deleted: string[];
  /** Archives a version of which the destination refused to delete as locked: kept whole (whenLocked keep). */
  locked: string[];
  /** Archives a version of which is locked, hidden behind a delete marker with their siblings (whenLocked hide). */
  hidden: string[];
  /** Object keys whose locked versions stay, hidden behind a delete marker, until their retain-until date. */
  lingering: string[];
  /** Archives the destination refused to delete for another reason than a lock: left as they were, or partly. */
  failed: { key: string; refusal: Refusal }[];
}

const LISTING_CONCURRENCY = 8;

/** Deletes every version of each archive and its siblings, in the order above; see PurgeOutcome. */
export async function purgeVersions(io: PurgeIo, archiveKeys: readonly string[], options: PurgeOptions): Promise<PurgeOutcome> {
  const outcome: PurgeOutcome = { deleted: [], locked: [], hidden: [], lingering: [], failed: [] };
  const listed = await mapLimited(archiveKeys, options.concurrency ?? LISTING_CONCURRENCY, async (key) => {
    const siblings = new Set(options.siblingsOf(key));
    const versions = await io.versionsOf(key);
    return {
      key,
      archive: versions.filter((version) => version.key === key),
      // Anything else that starts with the archive's key is not ours to touch.
      siblings: versions.filter((version) => siblings.has(version.key)),
    };
  });

  const archiveRefusals = byKey(await deleteAll(io, listed.flatMap((backup) => backup.archive)));
  const toHide: string[] = [];
  const freed: typeof listed = [];
  for (const backup of listed) {
    const refused = archiveRefusals.get(backup.key) ?? [];
    const other = refused.find((refusal) => !LOCK_REFUSAL_CODES.has(refusal.code));
    if (other) {
      outcome.failed.push({ key: backup.key, refusal: other });
    } else if (refused.length === 0) {
      freed.push(backup);
    } else if (options.whenLocked === 'keep') {
      outcome.locked.push(backup.key);
    } else {
      // A refused version may have sat behind a delete marker this purge just removed: hide it again, whatever it was.
      toHide.push(backup.key);
      outcome.hidden.push(backup.key);
      freed.push(backup);
    }
  }

  const siblingRefusals = byKey(await deleteAll(io, freed.flatMap((backup) => backup.siblings)));
  for (const backup of freed) {
    let failedSibling: Refusal | undefined;
    for (const sibling of new Set(backup.siblings.map((version) => version.key))) {
      const refused = siblingRefusals.get(sibling) ?? [];
      const other = refused.find((refusal) => !LOCK_REFUSAL_CODES.has(refusal.code));
      if (other) failedSibling ??= other;
      else if (refused.length > 0) {
        toHide.push(sibling);
        outcome.lingering.push(sibling);
      }
    }
    if (failedSibling) outcome.failed.push({ key: backup.key, refusal: failedSibling });
    else if (!outcome.hidden.includes(backup.key)) outcome.deleted.push(backup.key);
  }

  if (toHide.length > 0) {
    // A marker refused (a policy without s3:DeleteObject): the locked version stays visible; said as a failure of its archive.
    for (const [key, refusals] of byKey(await io.hide(toHide))) {
      const archive = archiveKeys.find((candidate) => key === candidate) ?? archiveKeys.find((candidate) => key.startsWith(candidate));
      const first = refusals[0];
      if (!archive || !first) continue;
      outcome.hidden = outcome.hidden.filter((hidden) => hidden !== key);
      outcome.lingering = outcome.lingering.filter((lingering) => lingering !== key);
      outcome.failed.push({ key: archive, refusal: first });
    }
  }
  return outcome;
}

async function deleteAll(io: PurgeIo, versions: readonly ObjectVersion[]): Promise<Refusal[]> {
  return versions.length === 0 ? [] : io.deleteVersions(versions);
}

function byKey(refusals: readonly Refusal[]): Map<string, Refusal[]> {
  const map = new Map<string, Refusal[]>();
  for (const refusal of refusals) map.set(refusal.key, [...(map.get(refusal.key) ?? []), refusal]);
  return map;
}
