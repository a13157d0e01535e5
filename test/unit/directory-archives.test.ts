import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { makeBackupKey } from '@chango/contracts';
import { DirectoryArchives, NotTheArchive } from '@chango/directory-archives';
import { tempDir } from '../../testkit/fixtures.js';
import { applyDirectoryRetention } from '../../apps/worker/src/directory-retention.js';

const DAY_MS = 24 * 3600_000;

/** An archive's name, bytes and facts, made `daysAgo` days ago. */
function archive(daysAgo: number, bytes = randomBytes(3000)) {
  const name = makeBackupKey('', new Date(Date.now() - daysAgo * DAY_MS), randomUUID());
  return { name, bytes, facts: { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') } };
}

describe('backups in a local directory (real files)', () => {
  test('a stored copy lands in its month folder with a sha256sum sidecar and no partial file; storing it again changes nothing', async (t) => {
    const root = await tempDir(t, 'chango-dir');
    const archives = new DirectoryArchives(root);
    const one = archive(0);
    const path = await archives.store(one.name, Readable.from([one.bytes]), one.facts);
    const month = new Date().toISOString().slice(0, 7);
    assert.equal(path, join(root, month, one.name));
    assert.deepEqual((await readdir(join(root, month))).sort(), [one.name, `${one.name}.sha256`]);
    assert.equal(await readFile(join(root, month, `${one.name}.sha256`), 'utf8'), `${one.facts.sha256}  ${one.name}\n`);
    const before = (await stat(path)).mtimeMs;
    assert.equal(await archives.store(one.name, Readable.from([Buffer.from('not read')]), one.facts), path);
    assert.equal((await stat(path)).mtimeMs, before, 'a committed copy is not written twice');
    const opened = await archives.open(one.name);
    assert.equal(opened.sidecarSha256, one.facts.sha256);
    opened.stream.destroy();
    assert.equal((await archives.newestComplete())?.key, one.name);
  });

  test('bytes that are not the archive are refused and leave nothing; a missing root is refused, never created', async (t) => {
    const root = await tempDir(t, 'chango-dir');
    const archives = new DirectoryArchives(root);
    const one = archive(0);
    await assert.rejects(archives.store(one.name, Readable.from([randomBytes(3000)]), one.facts), (err: Error) => err instanceof NotTheArchive && /not copied/.test(err.message));
    const month = new Date().toISOString().slice(0, 7);
    assert.deepEqual(await readdir(join(root, month)), [], 'no partial file, no archive, no sidecar');
    const gone = new DirectoryArchives(join(root, 'not-mounted'));
    await assert.rejects(gone.store(one.name, Readable.from([one.bytes]), one.facts), /not-mounted does not exist: mount the disk or create the directory/);
    await assert.rejects(stat(join(root, 'not-mounted')), /ENOENT/);
  });

  test('pages run newest first across month folders, from a cursor', async (t) => {
    const root = await tempDir(t, 'chango-dir');
    const archives = new DirectoryArchives(root);
    const made = [archive(70), archive(40), archive(35), archive(1)];
    for (const one of made) await archives.store(one.name, Readable.from([one.bytes]), one.facts);
    const first = await archives.page({ limit: 3 });
    assert.deepEqual(first.objects.map((o) => o.key), [made[3]!.name, made[2]!.name, made[1]!.name]);
    assert.ok(first.objects.every((o) => o.complete && o.sha256 !== null));
    const second = await archives.page({ limit: 3, before: first.next ?? undefined });
    assert.deepEqual(second.objects.map((o) => o.key), [made[0]!.name]);
    assert.equal(second.next, null);
  });

  test('retention keeps the newest the rule names, removes older copies from the oldest month, and stale partial files', async (t) => {
    const root = await tempDir(t, 'chango-dir');
    const archives = new DirectoryArchives(root);
    const made = [archive(95), archive(94), archive(60), archive(2), archive(1)];
    for (const one of made) await archives.store(one.name, Readable.from([one.bytes]), one.facts);
    const oldMonth = new Date(Date.now() - 95 * DAY_MS).toISOString().slice(0, 7);
    const partial = join(root, oldMonth, `.${made[0]!.name}.partial-${randomUUID()}`);
    await writeFile(partial, 'cut short');
    await utimes(partial, new Date(Date.now() - 2 * DAY_MS), new Date(Date.now() - 2 * DAY_MS));
    const newest = made[4]!.name;

    const removed = await applyDirectoryRetention(archives, { keepLast: 2 }, newest);
    const left = async () => (await archives.page({ limit: 10 })).objects.map((o) => o.key);
    // One pass reads the oldest month only: the 95 and 94 days old copies there go (with the stale partial file).
    assert.ok(removed.includes(partial));
    assert.deepEqual((await left()).sort(), [made[2]!.name, made[3]!.name, made[4]!.name].sort());
    await applyDirectoryRetention(archives, { keepLast: 2 }, newest);
    assert.deepEqual((await left()).sort(), [made[3]!.name, made[4]!.name].sort(), 'the next pass reaches the next month');
    await mkdir(join(root, 'not-a-month'));
    assert.deepEqual(await applyDirectoryRetention(archives, { keepAll: true }, newest), [], 'keepAll removes nothing');
    assert.ok((await readdir(root)).includes('not-a-month'), 'what is not ours is never touched');
  });
});
