import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { makeBackupKey } from '@chango/contracts';
import { firstArchiveBound, groupArchives, seekNewest, walkPage, type ListedObject, type ListRequest, type SeekHint } from '@chango/s3';

const PREFIX = 'prod/';
const HOUR = 3600_000;
const DAY = 24 * HOUR;
/** The seek aims back from the newest archive, or from now before it knows one: fixtures are placed relative to now. */
const NOW = Date.now();

/**
 * An S3 bucket's listing in memory, with S3's rules: ascending keys,
 * start-after, at most max-keys (and never more than 1,000), a continuation.
 * Counts the requests, which is what the seek is judged by.
 */
class ListingOf {
  readonly names: string[];
  requests = 0;
  constructor(names: string[]) {
    this.names = [...names].sort();
  }
  readonly list: ListRequest = async ({ startAfter, continuation, maxKeys }) => {
    this.requests += 1;
    const after = continuation || startAfter;
    let index = this.names.findIndex((name) => name > after);
    if (index < 0) index = this.names.length;
    const slice = this.names.slice(index, index + Math.min(maxKeys, 1000));
    const objects: ListedObject[] = slice.map((name) => ({ name, size: 1, etag: `"${name.length}"`, lastModified: new Date(0) }));
    const truncated = index + slice.length < this.names.length;
    return { objects, truncated, continuation: truncated ? (slice.at(-1) ?? '') : '' };
  };
}

/** `count` committed backups (archive + sidecar, every third with a drill record), `spacingMs` apart, the newest `endMs`. */
/** `count` backups `spacingMs` apart, the newest taken at `endMs` (by default five minutes ago: a destination that is backed up). */
function backups(count: number, spacingMs: number, endMs = NOW - 5 * 60_000): string[] {
  const names: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const key = makeBackupKey(PREFIX, new Date(endMs - (count - 1 - i) * spacingMs), randomUUID());
    names.push(key, `${key}.sha256`);
    if (i % 3 === 0) names.push(`${key}.verify.json`);
  }
  return names;
}

function archiveKeys(names: readonly string[]): string[] {
  return names.filter((name) => name.endsWith('.tar.gz')).sort().reverse();
}

describe('archives newest first from an ascending listing', () => {
  test('siblings are grouped with their archive; foreign objects and orphaned sidecars are left out', () => {
    const [a, b] = [makeBackupKey(PREFIX, new Date(Date.UTC(2026, 0, 1)), randomUUID()), makeBackupKey(PREFIX, new Date(Date.UTC(2026, 0, 2)), randomUUID())];
    const names = [`${PREFIX}README`, a, `${a}.sha256`, `${a}.verify.json`, `${b}.sha256`, `${PREFIX}chango-notes.txt`].sort();
    const archives = groupArchives(PREFIX, names.map((name) => ({ name, size: 1, etag: 'e', lastModified: new Date(0) })));
    assert.deepEqual(archives.map((archive) => [archive.key, Boolean(archive.sidecar), Boolean(archive.verifyRecord)]), [[a, true, true]]);
  });

  test('with few backups, one request from the first archive gives them all, and the next seek starts there too', async () => {
    const bucket = new ListingOf([...backups(10, HOUR), `${PREFIX}other/x`]);
    const found = await seekNewest(bucket.list, { prefix: PREFIX, need: 50 });
    assert.deepEqual(found.archives.map((archive) => archive.key), archiveKeys(bucket.names));
    assert.equal(found.reachedOldest, true);
    assert.equal(bucket.requests, 1);
    bucket.requests = 0;
    const again = await seekNewest(bucket.list, { prefix: PREFIX, need: 50, hint: found.hint });
    assert.equal(again.archives.length, 10);
    assert.equal(bucket.requests, 1);
  });

  /**
   * 10,000 hourly backups, the newest 50 wanted: a cold seek (nothing remembered) costs a bounded number of requests —
   * when backups stopped a month ago it halves its way back, bounded by the time span, not the count (log2 of the span
   * over the window it needs: about 9; 20 would be centuries) — and a warm one, aimed from the newest archive it saw
   * with the spacing it learned, at most two.
   */
  for (const [when, newest, coldAtMost] of [
    ['backed up until now', undefined, 8],
    ['stopped a month ago', NOW - 30 * DAY, 20],
  ] as const) {
    test(`10,000 hourly backups, ${when}: the newest 50 take at most ${coldAtMost} requests cold, and at most two warm`, async () => {
      const bucket = new ListingOf(backups(10_000, HOUR, newest));
      const cold = await seekNewest(bucket.list, { prefix: PREFIX, need: 50 });
      assert.deepEqual(cold.archives.slice(0, 50).map((a) => a.key), archiveKeys(bucket.names).slice(0, 50));
      assert.ok(cold.requests <= coldAtMost, `a cold seek took ${cold.requests} requests`);
      bucket.requests = 0;
      const warm = await seekNewest(bucket.list, { prefix: PREFIX, need: 50, hint: cold.hint });
      assert.deepEqual(warm.archives.slice(0, 50).map((a) => a.key), archiveKeys(bucket.names).slice(0, 50));
      assert.ok(bucket.requests <= 2, `a warm seek took ${bucket.requests} requests (cold: ${cold.requests})`);
      assert.equal(warm.reachedOldest, false);
    });
  }

  test('paging with the cursor gives every archive once, newest first: most pages one or two requests, the one across a gap of years a few more', async () => {
    const bucket = new ListingOf([...backups(700, 5 * 60_000), ...backups(300, HOUR, Date.UTC(2025, 0, 1))]);
    const seen: string[] = [];
    let before: string | undefined;
    let hint: SeekHint | undefined;
    const perPage: number[] = [];
    for (let page = 0; page < 100; page += 1) {
      bucket.requests = 0;
      const found = await seekNewest(bucket.list, { prefix: PREFIX, need: 50, before, hint });
      hint = { spacing: found.hint.spacing ?? hint?.spacing };
      perPage.push(bucket.requests);
      const shown = found.archives.slice(0, 50);
      seen.push(...shown.map((archive) => archive.key));
      if (found.reachedOldest && found.archives.length <= 50) break;
      before = shown.at(-1)?.key;
    }
    assert.deepEqual(seen, archiveKeys(bucket.names));
    const sorted = [...perPage].sort((a, b) => a - b);
    assert.ok(sorted[Math.floor(sorted.length / 2)]! <= 2, `requests per page: ${perPage.join(' ')}`);
    // Crossing the gap, each request looks four times further back: log4(two years / a window of hours).
    assert.ok(sorted.at(-1)! <= 8, `requests per page: ${perPage.join(' ')}`);
  });

  test('counting only committed archives skips the ones without a sidecar', async () => {
    const names = backups(2000, HOUR);
    const newest = makeBackupKey(PREFIX, new Date(NOW), randomUUID());
    const bucket = new ListingOf([...names, newest]);
    const found = await seekNewest(bucket.list, { prefix: PREFIX, need: 1, counts: (archive) => archive.sidecar !== null });
    assert.equal(found.archives[0]?.key, newest, 'the uncommitted archive is the newest one');
    assert.equal(found.archives.find((archive) => archive.sidecar)?.key, archiveKeys(names)[0]);
  });

  test('thousands of archives in one second are still all found (read whole when a window cannot be split)', async () => {
    const second = Date.UTC(2026, 5, 1);
    const names: string[] = [];
    for (let i = 0; i < 1500; i += 1) names.push(makeBackupKey(PREFIX, new Date(second), randomUUID()));
    const bucket = new ListingOf([...names, ...backups(5, HOUR, second - HOUR)]);
    const found = await seekNewest(bucket.list, { prefix: PREFIX, need: 1600 });
    assert.equal(found.archives.length, 1505);
    assert.equal(found.reachedOldest, true);
  });

  test('a walk page that ends on an archive leaves it to the next page, so its sidecar is seen with it', async () => {
    const bucket = new ListingOf(backups(5, HOUR));
    const first = await walkPage(bucket.list, PREFIX, firstArchiveBound(PREFIX), 4);
    // Four keys: archive, sidecar, drill record of the first; archive of the second (its sidecar on the next page).
    assert.deepEqual(first.archives.map((archive) => Boolean(archive.sidecar)), [true]);
    const seen = [...first.archives];
    let next = first.next;
    while (next !== null) {
      const page = await walkPage(bucket.list, PREFIX, next, 4);
      seen.push(...page.archives);
      next = page.next;
    }
    assert.deepEqual(seen.map((archive) => archive.key), archiveKeys(bucket.names).reverse());
    assert.ok(seen.every((archive) => archive.sidecar), 'every archive was seen with its sidecar');
  });
});
