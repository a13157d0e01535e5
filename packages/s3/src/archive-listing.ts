import { backupTimestamp, parseBackupKey, SIDECAR_SUFFIX, VERIFY_SUFFIX } from '@chango/contracts';

/**
 * Reading a destination's archives newest first, in pages, at a cost that
 * does not grow with how many are kept.
 *
 * S3 lists keys in ascending order only, and our keys start with their UTC
 * time (`<prefix>chango-<YYYYMMDDTHHMMSSZ>-<uuid>.tar.gz`), so the oldest come
 * first. Instead of listing everything to reach the end, a seek picks a start
 * time, lists from there (`start-after`), and moves the start earlier when the
 * window holds too few archives or later when it holds more than a budget —
 * guided by the spacing between backups it saw, remembered per destination.
 * Each listing request is one bounded call of at most 1,000 keys; with 10 or
 * 10,000 backups a page of the newest 50 takes one or two of them. Nothing is
 * kept but the objects themselves: no index that could disagree with them.
 */

/** One object of a listing (ascending key order). */
export interface ListedObject {
  name: string;
  size: number;
  etag: string;
  lastModified: Date;
}

/** One ListObjectsV2 request: keys after `startAfter` (or where `continuation` points), at most `maxKeys`. */
export type ListRequest = (request: { startAfter: string; continuation: string; maxKeys: number }) => Promise<{ objects: ListedObject[]; truncated: boolean; continuation: string }>;

/** An archive as the listing shows it: its object, and which of its sidecar and drill record exist. */
export interface ListedArchive {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
  /** From the key (second resolution). */
  taken: Date;
  /** `<key>.sha256`, the commit marker: an archive without one never committed. */
  sidecar: { etag: string } | null;
  /** `<key>.verify.json`, the last restore drill of it. */
  verifyRecord: { etag: string } | null;
}

/** S3's largest page, and the most a seek reads in one window before it narrows it. */
export const MAX_KEYS_PER_REQUEST = 1000;
/** Keys per archive at most: the archive, its sidecar, its drill record. */
const KEYS_PER_ARCHIVE = 3;
/** No backup is older than this; a seek that would start earlier lists from the first archive instead. */
const EARLIEST_MS = Date.UTC(2000, 0, 1);
/** A bound on seek rounds: far more than halving 30 years down to one second takes (≈ 30). */
const MAX_SEEK_ROUNDS = 64;

/** Where a listing starts to take in every archive under `prefix` (this string itself is never an archive key). */
export function firstArchiveBound(prefix: string): string {
  return `${prefix}chango-`;
}

/** A `start-after` value that comes before every archive taken at `ms` or later, and after every one taken earlier. */
export function startAfterTime(prefix: string, ms: number): string {
  return `${prefix}chango-${backupTimestamp(new Date(Math.floor(ms / 1000) * 1000))}`;
}

/**
 * Groups a run of listed objects (ascending) into archives with their
 * siblings, which sort right after their archive. Anything else — foreign
 * objects, a sidecar whose archive is gone — is left out.
 */
export function groupArchives(prefix: string, objects: readonly ListedObject[]): ListedArchive[] {
  const archives: ListedArchive[] = [];
  for (const object of objects) {
    const last = archives.at(-1);
    if (last && object.name === last.key + SIDECAR_SUFFIX) {
      last.sidecar = { etag: object.etag };
      continue;
    }
    if (last && object.name === last.key + VERIFY_SUFFIX) {
      last.verifyRecord = { etag: object.etag };
      continue;
    }
    const parsed = parseBackupKey(prefix, object.name);
    if (!parsed) continue;
    archives.push({ key: object.name, size: object.size, etag: object.etag, lastModified: object.lastModified, taken: parsed.timestamp, sidecar: null, verifyRecord: null });
  }
  return archives;
}

/** Newest first: by the key's time, then by the upload's time, which tells apart two backups of one second. */
export function newestFirst(a: ListedArchive, b: ListedArchive): number {
  return b.taken.getTime() - a.taken.getTime() || b.lastModified.getTime() - a.lastModified.getTime() || (a.key < b.key ? 1 : -1);
}

/** One listing page from `startAfter` on, its last archive held back when its siblings may be on the next page. */
export interface WalkPage {
  archives: ListedArchive[];
  /** Where the next page starts (`start-after`); null once the listing reached its end. */
  next: string | null;
}

/**
 * One request of an ascending walk over the archives (retention's oldest end,
 * the inventory count). An archive that ends a truncated page is left to the
 * next page, where its sidecar and drill record are seen with it.
 */
export async function walkPage(list: ListRequest, prefix: string, startAfter: string, maxKeys = MAX_KEYS_PER_REQUEST): Promise<WalkPage> {
  const page = await list({ startAfter, continuation: '', maxKeys });
  const archives = groupArchives(prefix, page.objects);
  if (!page.truncated) return { archives, next: null };
  const lastName = page.objects.at(-1)?.name ?? startAfter;
  const tail = archives.at(-1);
  // The page ended on an archive or one of its siblings: the rest of its siblings may follow. Start the next page before it.
  if (tail && lastName.startsWith(tail.key) && archives.length > 1) {
    archives.pop();
    const before = page.objects[page.objects.findIndex((object) => object.name === tail.key) - 1];
    return { archives, next: before?.name ?? startAfter };
  }
  return { archives, next: lastName };
}

export interface SeekRequest {
  prefix: string;
  /** Only archives whose key sorts before this one (a page cursor); none: up to the newest. */
  before?: string | undefined;
  /** How many archives that `counts` the window must hold. */
  need: number;
  /** Which archives count towards `need` (all by default; committed ones for "the newest complete"). */
  counts?: (archive: ListedArchive) => boolean;
  /** What an earlier seek here learned: where to start looking. */
  hint?: SeekHint | undefined;
}

/** What a seek learned about a destination, for the next one. */
export interface SeekHint {
  /** Typical milliseconds between two backups. */
  spacing?: number | undefined;
  /** The newest window reached back to the oldest archive: there are few, list them from the first. */
  fromFirst?: boolean | undefined;
  /** When the newest archive was taken (ms), as last seen: where the first window of a listing from the top is aimed. */
  newest?: number | undefined;
}

export interface SeekResult {
  /** Newest first: at least the `need` newest counted archives before the cursor (all of them when fewer exist), maybe older ones too. */
  archives: ListedArchive[];
  /** Whether the window reached back to the oldest archive: nothing older exists. */
  reachedOldest: boolean;
  /** Listing requests made. */
  requests: number;
  /** For the next seek here. */
  hint: SeekHint;
}

/**
 * Finds the newest archives before a cursor without listing from the oldest:
 * see the module comment. The cost is a few requests of at most 1,000 keys,
 * set by `need` and by how evenly backups are spread, not by how many exist.
 */
export async function seekNewest(list: ListRequest, request: SeekRequest): Promise<SeekResult> {
  const { prefix, before } = request;
  const need = Math.max(1, request.need);
  const counts = request.counts ?? (() => true);
  const budget = Math.max(MAX_KEYS_PER_REQUEST, need * KEYS_PER_ARCHIVE * 2);
  const upper = before ? (parseBackupKey(prefix, before)?.timestamp.getTime() ?? Date.now()) + 1000 : Date.now() + 60_000;
  let requests = 0;
  let spacing = request.hint?.spacing;
  /**
   * When the newest archive before the cursor was taken. Windows are aimed back from it, not from the cursor (or
   * now): when backups stopped a month ago, aiming from now would look at a month of nothing first. Known for sure
   * once a window that reaches the cursor holds an archive; for a listing from the top, first guessed from the hint.
   */
  let newest = before === undefined ? request.hint?.newest : undefined;
  const anchor = () => Math.min(upper, newest !== undefined ? newest + 1000 : upper);
  /** The last window reached the cursor and held nothing: look further back by leaps, not by the spacing. */
  let wasEmpty = false;
  /** A window start known to hold too few (its window must start earlier). */
  let tooFew = upper;
  /** A window start known to hold more than the budget (its window must start later). */
  let tooMany: number | undefined;
  /** How many times more archives the last window that was too small needed. */
  let shortBy: number | undefined;
  // Aim for a window of about twice what is needed; with no hint, or few backups last time, list from the first
  // archive (one request when there are few; a wrong guess costs one request and teaches the spacing).
  let start: number | undefined = spacing !== undefined && !request.hint?.fromFirst ? aimedStart(anchor(), need, spacing) : undefined;

  for (let round = 0; ; round += 1) {
    if (start !== undefined && start < EARLIEST_MS) start = undefined;
    // When seeking cannot narrow further (one second holds more than the budget, or the rounds ran out), read the
    // window whole however long it is: correct first, and it only happens with thousands of objects in one second.
    let unbounded = false;
    if (round >= MAX_SEEK_ROUNDS) {
      start = undefined;
      unbounded = true;
    } else if (tooMany !== undefined && tooFew - tooMany <= 1000) {
      start = tooMany;
      unbounded = true;
    }
    const window = await readWindow(list, start === undefined ? firstArchiveBound(prefix) : startAfterTime(prefix, start), before, unbounded ? Infinity : budget);
    requests += window.requests;
    const archives = groupArchives(prefix, window.objects).sort(newestFirst);
    spacing = spacingOf(archives) ?? spacing;
    if (window.whole) {
      const counted = archives.filter(counts).length;
      if (archives[0]) newest = archives[0].taken.getTime();
      wasEmpty = archives.length === 0;
      if (start === undefined || counted >= need) {
        return { archives, reachedOldest: start === undefined, requests, hint: { spacing, fromFirst: start === undefined && before === undefined, newest } };
      }
      // Too few: the window must start earlier than this (and earlier than any start thought too big).
      tooFew = start;
      if (tooMany !== undefined && tooMany >= tooFew) tooMany = undefined;
      shortBy = counted > 0 ? need / counted : undefined;
    } else {
      // More than the budget between start and the cursor: the window must start later.
      tooMany = start ?? archives.at(-1)?.taken.getTime() ?? EARLIEST_MS;
      wasEmpty = false;
    }
    start = nextStart(upper, anchor(), need, wasEmpty ? undefined : spacing, tooFew, tooMany, shortBy);
  }
}

/**
 * The next window start: from the spacing, back from the newest archive
 * (`anchor`), when it lands between what is known; else, going back from
 * the cursor (`upper`), as many times further as the last window fell short
 * (at least 4, 16 when it held none); else halfway between.
 */
function nextStart(upper: number, anchor: number, need: number, spacing: number | undefined, tooFew: number, tooMany: number | undefined, shortBy: number | undefined): number | undefined {
  const guess = spacing !== undefined ? aimedStart(anchor, need, spacing) : undefined;
  const low = tooMany ?? EARLIEST_MS;
  if (guess !== undefined && guess > low && guess < tooFew) return guess;
  if (tooMany === undefined) {
    const further = upper - (upper - tooFew) * Math.max(4, Math.min(64, (shortBy ?? 8) * 2)) - 60_000;
    return further < EARLIEST_MS ? undefined : further;
  }
  return Math.floor((tooMany + tooFew) / 2);
}

/** A window start that should hold about twice the archives needed, backups being `spacing` apart (and a second more, for the one of `upper`). */
function aimedStart(upper: number, need: number, spacing: number): number {
  return upper - spacing * need * 2 - 1000;
}

/** The mean time between consecutive archives (newest first), or undefined with fewer than two. */
function spacingOf(archives: readonly ListedArchive[]): number | undefined {
  if (archives.length < 2) return undefined;
  const newest = archives[0]!.taken.getTime();
  const oldest = archives.at(-1)!.taken.getTime();
  return Math.max(1000, (newest - oldest) / (archives.length - 1));
}

/**
 * Lists from `startAfter` up to (not including) `before`, following
 * continuations, until the window is read or more than `budget` keys came.
 */
async function readWindow(list: ListRequest, startAfter: string, before: string | undefined, budget: number): Promise<{ objects: ListedObject[]; whole: boolean; requests: number }> {
  const objects: ListedObject[] = [];
  let continuation = '';
  let requests = 0;
  for (;;) {
    const page = await list({ startAfter, continuation, maxKeys: MAX_KEYS_PER_REQUEST });
    requests += 1;
    for (const object of page.objects) {
      if (before !== undefined && object.name >= before) return { objects, whole: true, requests };
      objects.push(object);
    }
    if (!page.truncated) return { objects, whole: true, requests };
    if (objects.length >= budget) return { objects, whole: false, requests };
    continuation = page.continuation;
  }
}
