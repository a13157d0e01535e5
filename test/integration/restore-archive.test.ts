import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { serializeManifest, type Manifest } from '@chango/archive';
import {
  assertStoresNotInUse,
  drill,
  extractVerified,
  isRestoreError,
  readManifest,
  resolveOwner,
  restoreInto,
  type RestoreErrorCode,
} from '@chango/restore';
import { collectStats, ControlPlaneState, isStateError, STORE_NAMES, type StateErrorCode, type StateStats } from '@chango/state';
import { newRootSecret, SuiteScope, tempDir, treeState, type CleanupScope } from '../../testkit/fixtures.js';
import { REPO_ROOT } from '../../testkit/processes.js';
import { openState, plantSecrets } from '../../testkit/state.js';
import { makeBackupArchive, type BackupArchive } from '../../testkit/backup-archive.js';
import { craft, type CraftEntry } from '../../testkit/crafted-archive.js';

// ---------------------------------------------------------------------------
// One real backup, made once: a seeded state, checkpointed, archived by the real writer.

const suite = new SuiteScope();
let backup: BackupArchive;

before(async () => {
  backup = await makeBackupArchive(suite);
});

after(() => suite.run());

// ---------------------------------------------------------------------------
// Helpers

/** A sandbox folder with a data dir holding stores of another state (made with its own root secret). */
async function sandboxWithStores(t: CleanupScope): Promise<{ box: string; dataDir: string; before: Record<string, string> }> {
  const box = await tempDir(t, 'chango-restore-box');
  const dataDir = join(box, 'data');
  const state = await openState(dataDir, newRootSecret(), true);
  await plantSecrets(state);
  await state.close();
  return { box, dataDir, before: await treeState(box) };
}

/** Splits bytes into 16 KiB chunks: crafted archives arrive as a stream does, in pieces. */
function streamOf(bytes: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += 16 * 1024) pieces.push(bytes.subarray(at, at + 16 * 1024));
  return Readable.from(pieces);
}

const archiveStream = (): Readable => createReadStream(backup.archive);

/** Awaits a rejection with `code` (RestoreError or StateError) whose message contains every one of `words`. */
async function rejectsWith(work: Promise<unknown>, code: RestoreErrorCode | StateErrorCode, ...words: (string | RegExp)[]): Promise<Error> {
  try {
    await work;
  } catch (err) {
    assert.ok(isRestoreError(err) || isStateError(err), `a RestoreError or StateError, got ${String(err)}`);
    assert.equal(err.code, code, `code of: ${err.message}`);
    for (const word of words) {
      if (typeof word === 'string') assert.ok(err.message.includes(word), `message names ${word}: ${err.message}`);
      else assert.match(err.message, word);
    }
    return err;
  }
  assert.fail(`resolved instead of failing with ${code}`);
}

/** The entries of the real backup, in the writer's order: manifest.json, then per store its folders and files. */
async function backupEntries(manifest: Manifest = backup.manifest): Promise<CraftEntry[]> {
  const entries: CraftEntry[] = [{ header: { name: 'manifest.json', type: 'file', mode: 0o600 }, content: serializeManifest(manifest) }];
  for (const store of STORE_NAMES) {
    entries.push({ header: { name: `${store}/`, type: 'directory', mode: 0o700 } });
    for (const file of backup.manifest.stores[store].files) {
      entries.push({ header: { name: file.path, type: 'file', mode: 0o600 }, content: await readFile(join(backup.checkpointDir, ...file.path.split('/'))) });
    }
  }
  return entries;
}

/** Index of the first entry after the kms store's files: inserted there, the kms files are already written. */
function afterKms(entries: CraftEntry[]): number {
  return entries.findIndex((e) => e.header.name === 'iam/');
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

async function stagingLeft(dataDir: string): Promise<string[]> {
  return (await readdir(dataDir)).filter((name) => name.startsWith('.chango-restore-'));
}

function recordsOf(stats: StateStats): { kms: number; iam: number; metadata: number } {
  return { kms: stats.kms.records, iam: stats.iam.records, metadata: stats.metadata.records };
}

// ---------------------------------------------------------------------------
// Round trip

test('restore: a real backup restored into an empty dir holds the source records, 0600 files, 0700 folders, and opens', async (t) => {
  const box = await tempDir(t, 'chango-restore-box');
  const dataDir = join(box, 'data');
  const report = await restoreInto(dataDir, archiveStream(), { rootSecret: backup.rootSecret, expectedSha256: backup.sha256 });

  assert.equal(report.sha256, backup.sha256);
  assert.equal(report.bytes, backup.size);
  assert.equal(report.files, STORE_NAMES.reduce((n, s) => n + backup.manifest.stores[s].files.length, 0));
  assert.deepEqual(report.manifest, backup.manifest);
  assert.equal(report.previousMovedTo, null);
  assert.equal(report.owner, null);
  assert.deepEqual(report.storeCheck?.records, recordsOf(backup.stats));
  assert.equal(report.storeCheck?.secretsDecrypted, backup.stats.secretsDecrypted);
  assert.equal(report.storeCheck?.keks, backup.stats.kms.keks);
  assert.ok(backup.stats.secretsDecrypted > 300, `secrets were decrypted: ${backup.stats.secretsDecrypted}`);

  // Only the stores: no manifest.json, no staging folder.
  assert.deepEqual((await readdir(dataDir)).sort(), ['iam', 'kms', 'metadata']);
  const tree = await treeState(dataDir);
  for (const [path, entry] of Object.entries(tree)) {
    assert.match(entry, path === '' || entry.startsWith('dir') ? /^dir 700$/ : /^file 600 /, `mode of ${path || dataDir}`);
  }
  for (const store of STORE_NAMES) {
    for (const file of backup.manifest.stores[store].files) {
      assert.ok(tree[file.path]?.endsWith(file.sha256), `${file.path} restored byte for byte`);
    }
  }

  const restored = await ControlPlaneState.open({ dataDir, rootSecret: backup.rootSecret });
  try {
    assert.deepEqual(await collectStats(restored), backup.stats);
  } finally {
    await restored.close();
  }
});

test('restore: over existing stores, the old ones are kept byte for byte in .chango-pre-restore-<timestamp>', async (t) => {
  const { dataDir, before: old } = await sandboxWithStores(t);
  const report = await restoreInto(dataDir, archiveStream(), { rootSecret: backup.rootSecret });

  assert.match(report.previousMovedTo ?? '', /\/data\/\.chango-pre-restore-\d{8}T\d{6}Z$/);
  const kept = await treeState(report.previousMovedTo as string);
  for (const store of STORE_NAMES) {
    for (const [path, entry] of Object.entries(old)) {
      if (path.startsWith(`data/${store}/`)) assert.equal(kept[path.slice('data/'.length)], entry, `${path} kept unchanged`);
    }
  }
  assert.deepEqual(report.storeCheck?.records, recordsOf(backup.stats));
  assert.deepEqual(await stagingLeft(dataDir), []);
  assert.ok(!(await exists(join(dataDir, 'manifest.json'))));
  const restored = await ControlPlaneState.open({ dataDir, rootSecret: backup.rootSecret, readOnly: true });
  try {
    assert.deepEqual(recordsOf(await collectStats(restored)), recordsOf(backup.stats));
  } finally {
    await restored.close();
  }
});

// ---------------------------------------------------------------------------
// Refusals that leave the existing stores as they were

test('restore: a wrong root secret is ROOT_SECRET_WRONG; the existing stores stay untouched, the staging folder goes', async (t) => {
  const { box, dataDir, before: old } = await sandboxWithStores(t);
  await rejectsWith(
    restoreInto(dataDir, archiveStream(), { rootSecret: Buffer.from(newRootSecret()), expectedSha256: backup.sha256 }),
    'ROOT_SECRET_WRONG',
    'root secret does not match',
  );
  assert.deepEqual(await treeState(box), old);
});

test('restore: a byte flipped in the middle of the archive is ARCHIVE_CORRUPT, or ARCHIVE_CHECKSUM_MISMATCH given the sidecar', async (t) => {
  const { box, dataDir, before: old } = await sandboxWithStores(t);
  const bytes = await readFile(backup.archive);
  // The middle, but not in a gzip member's 10-byte header, whose time and OS fields no check covers.
  let at = Math.floor(bytes.length / 2);
  while (bytes.subarray(at - 12, at + 3).includes(Buffer.from([0x1f, 0x8b, 0x08]))) at += 97;
  const damaged = Buffer.from(bytes);
  damaged[at] = (damaged[at] as number) ^ 0xff;

  await rejectsWith(restoreInto(dataDir, streamOf(damaged), { rootSecret: backup.rootSecret }), 'ARCHIVE_CORRUPT', 'cannot be read', 'sha256sum -c');
  assert.deepEqual(await treeState(box), old);

  const err = await rejectsWith(
    restoreInto(dataDir, streamOf(damaged), { rootSecret: backup.rootSecret, expectedSha256: backup.sha256 }),
    'ARCHIVE_CHECKSUM_MISMATCH',
    backup.sha256,
    createHash('sha256').update(damaged).digest('hex'),
    `${damaged.length} bytes read`,
  );
  assert.ok(isRestoreError(err.cause, 'ARCHIVE_CORRUPT'), 'the gzip error it caused is kept as the cause');
  assert.deepEqual(await treeState(box), old);
});

test('restore: a truncated download or a file that is not gzip is ARCHIVE_CORRUPT', async (t) => {
  const { box, dataDir, before: old } = await sandboxWithStores(t);
  const bytes = await readFile(backup.archive);
  await rejectsWith(restoreInto(dataDir, streamOf(bytes.subarray(0, Math.floor(bytes.length * 0.6)))), 'ARCHIVE_CORRUPT', 'unexpected end of file');
  await rejectsWith(restoreInto(dataDir, streamOf(Buffer.from('<Error><Code>AccessDenied</Code></Error>'))), 'ARCHIVE_CORRUPT', 'incorrect header check');

  // A file whose bytes went bad early in an archive that is also cut short: the damage to the
  // archive is the cause to report, not the one file it happened to show in first.
  const entries = await backupEntries();
  const current = entries.find((e) => e.header.name === 'kms/CURRENT');
  assert.ok(current?.content);
  current.content = Buffer.from(current.content.toString('utf8').replace('MANIFEST', 'MANIFESU'));
  const damaged = await craft(entries);
  await rejectsWith(restoreInto(dataDir, streamOf(damaged)), 'MANIFEST_MISMATCH', '"kms/CURRENT" has SHA-256');
  await rejectsWith(restoreInto(dataDir, streamOf(damaged.subarray(0, Math.floor(damaged.length * 0.7)))), 'ARCHIVE_CORRUPT', 'unexpected end of file');
  assert.deepEqual(await treeState(box), old);
});

test('restore: a wrong expected SHA-256 (a sidecar of another archive) is ARCHIVE_CHECKSUM_MISMATCH naming both sums', async (t) => {
  const { box, dataDir, before: old } = await sandboxWithStores(t);
  const wrong = createHash('sha256').update('another archive').digest('hex');
  await rejectsWith(
    restoreInto(dataDir, archiveStream(), { rootSecret: backup.rootSecret, expectedSha256: wrong }),
    'ARCHIVE_CHECKSUM_MISMATCH',
    wrong,
    backup.sha256,
    'sidecar',
  );
  await rejectsWith(restoreInto(dataDir, archiveStream(), { expectedSha256: 'not-a-checksum' }), 'ARCHIVE_CHECKSUM_MISMATCH', 'not 64 hex digits');
  assert.deepEqual(await treeState(box), old);
  // Upper-case hex, as some tools print it, is the same checksum.
  const ok = await restoreInto(join(box, 'other'), archiveStream(), { expectedSha256: backup.sha256.toUpperCase() });
  assert.equal(ok.sha256, backup.sha256);
});

test('restore: a manifest that disagrees with the files is MANIFEST_MISMATCH naming the file', async (t) => {
  const { box, dataDir, before: old } = await sandboxWithStores(t);
  // The store's records: in SST files, or (a small store, never flushed) in its write-ahead log.
  const target = backup.manifest.stores.iam.files.find((f) => /\.(sst|log)$/.test(f.path) && f.size > 0);
  assert.ok(target, 'the iam store has a data file');

  // One SHA-256 edited in the manifest, the archive re-packed.
  const edited = structuredClone(backup.manifest);
  const file = edited.stores.iam.files.find((f) => f.path === target.path);
  assert.ok(file);
  file.sha256 = createHash('sha256').update('something else').digest('hex');
  await rejectsWith(restoreInto(dataDir, streamOf(await craft(await backupEntries(edited)))), 'MANIFEST_MISMATCH', `"${target.path}" has SHA-256 ${target.sha256}`, file.sha256);

  // The manifest lists a file the archive lacks.
  const listed = structuredClone(backup.manifest);
  listed.stores.kms.files.push({ path: 'kms/000999.sst', size: 10, sha256: 'a'.repeat(64) });
  await rejectsWith(restoreInto(dataDir, streamOf(await craft(await backupEntries(listed)))), 'MANIFEST_MISMATCH', '"kms/000999.sst"', 'missing from the archive');

  // The archive holds a file the manifest does not list.
  const extra = await backupEntries();
  extra.splice(afterKms(extra), 0, { header: { name: 'kms/000777.sst', type: 'file' }, content: Buffer.from('planted') });
  await rejectsWith(restoreInto(dataDir, streamOf(await craft(extra))), 'MANIFEST_MISMATCH', '"kms/000777.sst"', 'does not list');

  // A file twice (the second copy would replace verified bytes).
  const twice = await backupEntries();
  const copy = twice.find((e) => e.header.name === target.path);
  assert.ok(copy);
  twice.push(copy);
  await rejectsWith(restoreInto(dataDir, streamOf(await craft(twice))), 'MANIFEST_MISMATCH', `"${target.path}" twice`);

  // A size in the header other than the manifest's: refused before writing it.
  const resized = await backupEntries();
  const victim = resized.find((e) => e.header.name === target.path);
  assert.ok(victim?.content);
  victim.content = Buffer.concat([victim.content, Buffer.from('tail')]);
  await rejectsWith(restoreInto(dataDir, streamOf(await craft(resized))), 'MANIFEST_MISMATCH', `"${target.path}" is ${target.size + 4} bytes in the archive`);

  // Record counts that differ from the stores (a manifest edited to claim more).
  const counts = structuredClone(backup.manifest);
  counts.stores.metadata.records += 5;
  await rejectsWith(
    restoreInto(dataDir, streamOf(await craft(await backupEntries(counts))), { rootSecret: backup.rootSecret }),
    'RECORD_COUNT_MISMATCH',
    `metadata store holds ${backup.manifest.stores.metadata.records} records`,
    `says ${counts.stores.metadata.records}`,
  );

  assert.deepEqual(await treeState(box), old);
});

test('restore: entries that could write outside the target or are not plain files are ARCHIVE_UNSAFE_ENTRY, and nothing is written', async (t) => {
  const { box, dataDir, before: old } = await sandboxWithStores(t);
  const evilPaths = [join(dataDir, 'evil'), join(box, 'evil'), join(box, 'evil-abs'), join(box, 'LINKED')];
  const cases: { entry: CraftEntry; words: string[] }[] = [
    { entry: { header: { name: '../evil', type: 'file' }, content: Buffer.from('pwned') }, words: ['"../evil"', "'..'"] },
    { entry: { header: { name: 'kms/../../evil', type: 'file' }, content: Buffer.from('pwned') }, words: ['"kms/../../evil"', "'..'"] },
    { entry: { header: { name: '../../evil', type: 'file' }, content: Buffer.from('pwned') }, words: ['"../../evil"'] },
    { entry: { header: { name: join(box, 'evil-abs'), type: 'file' }, content: Buffer.from('pwned') }, words: [JSON.stringify(join(box, 'evil-abs')), 'absolute path'] },
    { entry: { header: { name: 'kms/LINK', type: 'symlink', linkname: '/etc/passwd' } }, words: ['"kms/LINK"', 'symbolic link', '"/etc/passwd"'] },
    { entry: { header: { name: 'kms/HARD', type: 'link', linkname: 'kms/CURRENT' } }, words: ['"kms/HARD"', 'hard link'] },
    { entry: { header: { name: 'kms/null', type: 'character-device', devmajor: 1, devminor: 3 } }, words: ['"kms/null"', 'character device'] },
    { entry: { header: { name: 'kms/sda', type: 'block-device', devmajor: 8, devminor: 0 } }, words: ['"kms/sda"', 'block device'] },
    { entry: { header: { name: 'kms/pipe', type: 'fifo' } }, words: ['"kms/pipe"', 'FIFO'] },
    { entry: { header: { name: 'etc/cron.d/evil', type: 'file' }, content: Buffer.from('* * * * * root sh') }, words: ['"etc/cron.d/evil"', 'outside kms/, iam/, metadata/'] },
  ];
  for (const { entry, words } of cases) {
    const entries = await backupEntries();
    // After the kms files: they are written by then, and must be gone again afterwards.
    entries.splice(afterKms(entries), 0, entry);
    // A link first and then a file through it: the link alone must already stop everything.
    if (entry.header.type === 'symlink') entries.splice(afterKms(entries), 0, { header: { name: 'kms/LINK/x', type: 'file' }, content: Buffer.from('x') });
    await rejectsWith(restoreInto(dataDir, streamOf(await craft(entries)), { rootSecret: backup.rootSecret }), 'ARCHIVE_UNSAFE_ENTRY', ...words);
    for (const path of evilPaths) assert.ok(!(await exists(path)), `${path} not written (${entry.header.name})`);
    assert.deepEqual(await treeState(box), old, `nothing changed in the sandbox (${entry.header.name})`);
  }

  // A symlink into the target tree leaves no trace either when extracting straight into a folder.
  const target = join(box, 'target');
  const entries = await backupEntries();
  entries.splice(1, 0, { header: { name: 'kms/', type: 'directory' } }, { header: { name: 'kms/sub', type: 'symlink', linkname: box } });
  await rejectsWith(extractVerified(streamOf(await craft(entries)), target), 'ARCHIVE_UNSAFE_ENTRY', '"kms/sub"');
  assert.ok(!(await exists(target)), 'the target it created is removed again');
});

test('restore: an archive without a usable manifest.json first is MANIFEST_MISSING', async (t) => {
  const { box, dataDir, before: old } = await sandboxWithStores(t);
  const entries = await backupEntries();

  // No manifest at all: the first entry is the kms folder.
  await rejectsWith(restoreInto(dataDir, streamOf(await craft(entries.slice(1)))), 'MANIFEST_MISSING', 'first entry is "kms/"', 'not manifest.json');
  // Something else first.
  await rejectsWith(
    restoreInto(dataDir, streamOf(await craft([{ header: { name: 'README', type: 'file' }, content: Buffer.from('hi') }, ...entries]))),
    'MANIFEST_MISSING',
    'first entry is "README"',
  );
  // manifest.json second: the first entry decides.
  await rejectsWith(restoreInto(dataDir, streamOf(await craft([entries[1] as CraftEntry, ...entries]))), 'MANIFEST_MISSING', 'first entry is "kms/"');
  // Garbage in manifest.json.
  const garbage = [{ header: { name: 'manifest.json', type: 'file' as const }, content: Buffer.from('\u0000\u0001 not json') }, ...entries.slice(1)];
  await rejectsWith(restoreInto(dataDir, streamOf(await craft(garbage))), 'MANIFEST_MISSING', 'manifest.json cannot be used', 'not JSON');
  // Valid JSON, wrong shape.
  const shape = [{ header: { name: 'manifest.json', type: 'file' as const }, content: Buffer.from('{"format": 2}') }, ...entries.slice(1)];
  await rejectsWith(restoreInto(dataDir, streamOf(await craft(shape))), 'MANIFEST_MISSING', 'format');
  // An empty archive.
  await rejectsWith(restoreInto(dataDir, streamOf(await craft([]))), 'MANIFEST_MISSING', 'no entries');

  assert.deepEqual(await treeState(box), old);
});

// ---------------------------------------------------------------------------
// Stores in use

test('restore: stores held by an open writable state in this process are STORES_IN_USE, and the archive is not read', async (t) => {
  const box = await tempDir(t, 'chango-restore-box');
  const dataDir = join(box, 'data');
  const state = await openState(dataDir, newRootSecret(), true);
  t.after(() => state.close());
  await plantSecrets(state);

  const source = createReadStream(backup.archive);
  await rejectsWith(restoreInto(dataDir, source, { rootSecret: backup.rootSecret }), 'STORES_IN_USE', `${join(dataDir, 'kms')}`, `process ${process.pid}`, 'stop the chango worker');
  assert.ok(source.destroyed, 'the source is let go');
  assert.equal(source.bytesRead, 0, 'not a byte of the archive was read');
  assert.deepEqual((await readdir(dataDir)).sort(), ['iam', 'kms', 'metadata'], 'no staging folder');

  await state.close();
  await assertStoresNotInUse(dataDir);
});

test('restore: a store held by another process is STORES_IN_USE naming it; missing stores are fine', async (t) => {
  const box = await tempDir(t, 'chango-restore-box');
  const dataDir = join(box, 'data');
  await assertStoresNotInUse(dataDir); // nothing there at all
  const state = await openState(dataDir, newRootSecret(), true);
  await state.close();

  // The holder opens only iam/, as a second program on the host could.
  const script = `
    import { RocksStore } from '@chango/state';
    const store = await RocksStore.open(process.argv[1], { create: false });
    process.stdout.write('held\\n');
    process.stdin.resume();
    process.stdin.on('end', async () => { await store.close(); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, join(dataDir, 'iam')], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => (chunk.toString().includes('held') ? resolve() : undefined));
    child.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
  });
  const treeWhileHeld = await treeState(box);

  await rejectsWith(assertStoresNotInUse(dataDir), 'STORES_IN_USE', `${join(dataDir, 'iam')}`, `process ${child.pid}`);
  await rejectsWith(restoreInto(dataDir, archiveStream(), { rootSecret: backup.rootSecret }), 'STORES_IN_USE', 'iam store');
  assert.deepEqual(await treeState(box), treeWhileHeld, 'the probe changed nothing in the held stores');

  child.stdin.end();
  await new Promise((resolve) => child.once('exit', resolve));
  await assertStoresNotInUse(dataDir);
});

// ---------------------------------------------------------------------------
// readManifest, drill, owner

test('restore: readManifest returns the manifest after reading only the start of the archive', async () => {
  const source = createReadStream(backup.archive, { highWaterMark: 16 * 1024 });
  assert.deepEqual(await readManifest(source), backup.manifest);
  assert.ok(source.destroyed, 'the source is destroyed');
  assert.ok(source.bytesRead < backup.size / 4, `read ${source.bytesRead} of ${backup.size} bytes`);

  const entries = await backupEntries();
  await rejectsWith(readManifest(streamOf(await craft(entries.slice(1)))), 'MANIFEST_MISSING', 'first entry is "kms/"');
  await rejectsWith(readManifest(streamOf(Buffer.from('plain text, not gzip'))), 'ARCHIVE_CORRUPT');
  await rejectsWith(readManifest(streamOf(await craft([{ header: { name: 'manifest.json', type: 'symlink', linkname: '/etc/shadow' } }]))), 'ARCHIVE_UNSAFE_ENTRY', 'symbolic link');
});

test('restore: the drill checks a backup end to end and leaves no temp folder, also when it fails', async (t) => {
  const workDir = join(await tempDir(t, 'chango-restore-drill'), 'work');
  const report = await drill(archiveStream(), workDir, backup.rootSecret, { expectedSha256: backup.sha256 });
  assert.deepEqual(report.storeCheck.records, recordsOf(backup.stats));
  assert.equal(report.storeCheck.secretsDecrypted, backup.stats.secretsDecrypted);
  assert.deepEqual(report.manifest, backup.manifest);
  assert.equal(report.sha256, backup.sha256);
  assert.equal(report.bytes, backup.size);
  assert.ok(report.durationMs > 0);
  assert.deepEqual(await readdir(workDir), []);

  await rejectsWith(drill(archiveStream(), workDir, Buffer.from(newRootSecret())), 'ROOT_SECRET_WRONG');
  assert.deepEqual(await readdir(workDir), []);
  const bytes = await readFile(backup.archive);
  await rejectsWith(drill(streamOf(bytes.subarray(0, bytes.length - 100)), workDir, backup.rootSecret), 'ARCHIVE_CORRUPT');
  assert.deepEqual(await readdir(workDir), []);
});

test('restore: extractVerified refuses a target that is not an empty folder, and leaves it as it was', async (t) => {
  const box = await tempDir(t, 'chango-restore-box');
  await writeFile(join(box, 'keep'), 'mine');
  await rejectsWith(extractVerified(archiveStream(), box), 'TARGET_INVALID', 'not empty');
  await rejectsWith(extractVerified(archiveStream(), join(box, 'keep')), 'TARGET_INVALID', 'not a folder');
  assert.deepEqual(await readdir(box), ['keep']);
  // An existing empty folder is used, and left in place (empty) when the archive is refused.
  await mkdir(join(box, 'empty'));
  await rejectsWith(extractVerified(streamOf(Buffer.from('nope')), join(box, 'empty')), 'ARCHIVE_CORRUPT');
  assert.deepEqual(await readdir(join(box, 'empty')), []);
  // Refused after the kms files were written: they are removed, the folder itself stays.
  const entries = await backupEntries();
  entries.splice(afterKms(entries), 0, { header: { name: 'kms/LINK', type: 'symlink', linkname: '/etc/passwd' } });
  await rejectsWith(extractVerified(streamOf(await craft(entries)), join(box, 'empty')), 'ARCHIVE_UNSAFE_ENTRY', '"kms/LINK"');
  assert.deepEqual(await readdir(join(box, 'empty')), []);
  // And the same archive whole extracts into it.
  const whole = await extractVerified(archiveStream(), join(box, 'empty'));
  assert.equal(whole.sha256, backup.sha256);
  assert.deepEqual((await readdir(join(box, 'empty'))).sort(), ['iam', 'kms', 'metadata']);
});

test('restore: resolveOwner resolves names and ids and names what it cannot find', async () => {
  assert.deepEqual(await resolveOwner('root:root'), { uid: 0, gid: 0, spec: 'root:root' });
  assert.deepEqual(await resolveOwner('1234:5678'), { uid: 1234, gid: 5678, spec: '1234:5678' });
  await rejectsWith(resolveOwner('no-such-user-chango:root'), 'TARGET_INVALID', '"no-such-user-chango"', 'no such user');
  await rejectsWith(resolveOwner('root:no-such-group-chango'), 'TARGET_INVALID', '"no-such-group-chango"', 'no such group');
  await rejectsWith(resolveOwner('chango'), 'TARGET_INVALID', 'user:group');
  await rejectsWith(resolveOwner('-rf:root'), 'TARGET_INVALID', 'not a valid name');
});

test('restore: with an owner, the restored stores and the kept ones belong to it', async (t) => {
  const { dataDir } = await sandboxWithStores(t);
  const owner = await resolveOwner('nobody:nogroup');
  assert.equal(owner.uid, 65534);
  const report = await restoreInto(dataDir, archiveStream(), { rootSecret: backup.rootSecret, owner });
  assert.equal(report.owner, 'nobody:nogroup');
  assert.ok(report.previousMovedTo);
  for (const top of [...STORE_NAMES.map((s) => join(dataDir, s)), report.previousMovedTo]) {
    const paths = [top, ...(await readdir(top, { recursive: true })).map((p) => join(top, p))];
    assert.ok(paths.length > 3, `${top} has content`);
    for (const path of paths) {
      const info = await stat(path);
      assert.equal(info.uid, owner.uid, `owner of ${path}`);
      assert.equal(info.gid, owner.gid, `group of ${path}`);
    }
  }
  // The data dir was there before: its own owner is the operator's business.
  assert.equal((await stat(dataDir)).uid, process.getuid?.());
});
