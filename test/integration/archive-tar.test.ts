import assert from 'node:assert/strict';
import { execFile as execFileCb } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import {
  buildManifest,
  createArchiveStream,
  DEFAULT_CHUNK_BYTES,
  HashingCounter,
  serializeManifest,
  type Manifest,
} from '@chango/archive';
import { STORE_NAMES } from '@chango/state';
import { filesBelow, tempDir } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';

const execFile = promisify(execFileCb);
const MiB = 1024 * 1024;
// The { timeout } of the tests that must not hang is the safety net: a hung archive stream fails there.
/** A fixed, whole-second mtime, so that the archive's mtimes can be checked exactly. */
const FILE_MTIME = new Date('2024-03-04T05:06:07Z');

/** A checkpoint-shaped tree: three stores of random files, one big enough for several gzip members. */
async function makeCheckpoint(root: string): Promise<string> {
  const dir = join(root, 'checkpoint');
  const files: Record<string, Buffer> = {
    'kms/CURRENT': Buffer.from('MANIFEST-000004\n'),
    'kms/LOCK': Buffer.alloc(0),
    'kms/000003.sst': randomBytes(40_000),
    'iam/CURRENT': Buffer.from('MANIFEST-000009\n'),
    'iam/000012.sst': randomBytes(5 * MiB + 777), // several gzip members
    'iam/OPTIONS-000007': Buffer.from('[DBOptions]\n  create_if_missing=true\n'.repeat(50)),
    'metadata/000005.log': randomBytes(513),
    'metadata/archive/000001.log': randomBytes(100), // a subfolder, as RocksDB's WAL archive
  };
  for (const [path, bytes] of Object.entries(files)) {
    const absolute = join(dir, ...path.split('/'));
    await mkdir(join(absolute, '..'), { recursive: true });
    await writeFile(absolute, bytes);
    await utimes(absolute, FILE_MTIME, FILE_MTIME);
  }
  return dir;
}

async function manifestOf(dir: string): Promise<Manifest> {
  return buildManifest(dir, {
    backupId: '3b241101-e2bb-4255-8caf-4136c566a962',
    timestamp: new Date('2025-01-02T03:04:05.678Z'),
    hostname: 'master-1',
    changoVersion: '2.4.1',
    records: { kms: 3, iam: 120, metadata: 4000 },
  });
}

interface Written {
  file: string;
  counter: HashingCounter;
  /** The pieces the archive stream emitted: each one gzip member. */
  members: Buffer[];
}

/** Streams the archive through a HashingCounter into a file, as the upload would. */
async function writeArchive(t: TestContext, dir: string, manifest: Manifest): Promise<Written> {
  const out = join(await tempDir(t, 'chango-archive-out'), 'backup.tar.gz');
  const counter = new HashingCounter();
  const members: Buffer[] = [];
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      members.push(chunk.subarray(0, 3));
      callback(null, chunk);
    },
  });
  await pipeline(createArchiveStream(dir, manifest, { gzipLevel: 6 }), tap, counter, createWriteStream(out));
  return { file: out, counter, members };
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

test('archive: GNU tar lists manifest.json first, then each store folder and its files, with fixed modes', async (t) => {
  const root = await tempDir(t, 'chango-archive');
  const dir = await makeCheckpoint(root);
  const manifest = await manifestOf(dir);
  const { file, members } = await writeArchive(t, dir, manifest);

  // One gzip member per DEFAULT_CHUNK_BYTES of tar, each starting with the gzip magic.
  const tarBytes = gunzipSync(await readFile(file)).length;
  assert.equal(members.length, Math.ceil(tarBytes / DEFAULT_CHUNK_BYTES));
  assert.ok(members.length >= 3, `several gzip members (${members.length})`);
  for (const head of members) assert.deepEqual([...head], [0x1f, 0x8b, 8], 'each piece starts a gzip member');
  await execFile('gzip', ['-t', file]);

  const { stdout } = await execFile('tar', ['--full-time', '-tzvf', file]);
  const rows = stdout.trimEnd().split('\n').map((line) => {
    // -rw------- 0/0  1234 2024-03-04 05:06:07 kms/CURRENT
    const [mode, owner, size, day, time, name, ...rest] = line.split(/\s+/);
    assert.equal(rest.length, 0, `one name per line: ${line}`);
    return { mode, owner, size: Number(size), mtime: `${day} ${time}`, name };
  });

  const expectedNames = [
    'manifest.json',
    'kms/',
    'kms/000003.sst',
    'kms/CURRENT',
    'kms/LOCK',
    'iam/',
    'iam/000012.sst',
    'iam/CURRENT',
    'iam/OPTIONS-000007',
    'metadata/',
    'metadata/000005.log',
    'metadata/archive/',
    'metadata/archive/000001.log',
  ];
  assert.deepEqual(rows.map((r) => r.name), expectedNames);
  for (const row of rows) {
    const isDir = row.name?.endsWith('/');
    assert.equal(row.mode, isDir ? 'drwx------' : '-rw-------', `mode of ${row.name}`);
    assert.equal(row.owner, '0/0', `owner of ${row.name}`);
  }
  assert.equal(rows[0]?.size, serializeManifest(manifest).length, 'manifest.json size');
  // TZ of the tar process is the machine's; compare against the same rendering.
  const { stdout: rendered } = await execFile('date', ['-d', FILE_MTIME.toISOString(), '+%Y-%m-%d %H:%M:%S']);
  for (const row of rows.filter((r) => !r.name?.endsWith('/') && r.name !== 'manifest.json')) {
    assert.equal(row.mtime, rendered.trim(), `mtime of ${row.name} is the file's`);
  }
  for (const store of STORE_NAMES) {
    for (const f of manifest.stores[store].files) {
      assert.equal(rows.find((r) => r.name === f.path)?.size, f.size, `size of ${f.path} in the tar`);
    }
  }
  assert.ok(!stdout.includes(root), 'no path outside the archive root leaks into it');
});

test('archive: tar -xzf gives back exactly the manifest files, byte for byte, and the manifest itself', async (t) => {
  const dir = await makeCheckpoint(await tempDir(t, 'chango-archive'));
  const manifest = await manifestOf(dir);
  const { file } = await writeArchive(t, dir, manifest);
  const restored = await tempDir(t, 'chango-restore');
  await execFile('tar', ['-xzf', file, '-C', restored]);

  const manifestFiles = STORE_NAMES.flatMap((s) => manifest.stores[s].files);
  const extracted = (await filesBelow(restored)).map((p) => p.slice(restored.length + 1)).sort();
  assert.deepEqual(extracted, ['manifest.json', ...manifestFiles.map((f) => f.path)].sort());

  for (const f of manifestFiles) {
    const bytes = await readFile(join(restored, f.path));
    assert.equal(bytes.length, f.size, `size of ${f.path}`);
    assert.equal(sha256(bytes), f.sha256, `SHA-256 of ${f.path}`);
    const st = await stat(join(restored, f.path));
    assert.equal(st.mode & 0o777, 0o600, `mode of ${f.path}`);
    assert.equal(st.mtimeMs, FILE_MTIME.getTime(), `mtime of ${f.path}`);
  }
  for (const folder of [...STORE_NAMES, 'metadata/archive']) {
    assert.equal((await stat(join(restored, folder))).mode & 0o777, 0o700, `mode of ${folder}/`);
  }
  const restoredManifest = await readFile(join(restored, 'manifest.json'));
  assert.ok(restoredManifest.equals(serializeManifest(manifest)), 'manifest.json is the serialized manifest');
  assert.deepEqual(JSON.parse(restoredManifest.toString('utf8')), manifest);
});

test('archive: HashingCounter gives the sha256sum and size of the written file', async (t) => {
  const dir = await makeCheckpoint(await tempDir(t, 'chango-archive'));
  const { file, counter } = await writeArchive(t, dir, await manifestOf(dir));
  const { stdout } = await execFile('sha256sum', [file]);
  assert.equal(counter.sha256(), stdout.split(' ')[0]);
  assert.equal(counter.bytes, (await stat(file)).size);
});

/** Consumes an archive stream and returns the error it ends with (fails the test if it ends cleanly). */
async function archiveError(dir: string, manifest: Manifest): Promise<Error> {
  const drain = new Writable({ write: (_c, _e, cb) => cb() });
  try {
    await pipeline(createArchiveStream(dir, manifest, { gzipLevel: 1 }), drain);
  } catch (err) {
    return err as Error;
  }
  assert.fail('the archive stream ended without an error');
}

test('archive: a file whose bytes changed since the manifest ends the stream with an error naming it', { timeout: SAFETY_NET_MS }, async (t) => {
  const dir = await makeCheckpoint(await tempDir(t, 'chango-archive'));
  const manifest = await manifestOf(dir);
  await writeFile(join(dir, 'iam', '000012.sst'), randomBytes(5 * MiB + 777)); // same size, other bytes
  const err = await archiveError(dir, manifest);
  assert.match(err.message, /iam\/000012\.sst changed since the manifest/);
});

test('archive: a file that grew or vanished since the manifest is an error, not a crash or a hang', { timeout: SAFETY_NET_MS }, async (t) => {
  const dir = await makeCheckpoint(await tempDir(t, 'chango-archive'));
  const manifest = await manifestOf(dir);
  await writeFile(join(dir, 'kms', 'CURRENT'), 'MANIFEST-000004 and more\n');
  assert.match((await archiveError(dir, manifest)).message, /kms\/CURRENT no longer matches the manifest/);

  await writeFile(join(dir, 'kms', 'CURRENT'), 'MANIFEST-000004\n');
  await rm(join(dir, 'metadata', '000005.log'));
  assert.match((await archiveError(dir, manifest)).message, /metadata\/000005\.log is in the manifest but cannot be read \(ENOENT\)/);
});

test('archive: a reader that gives up mid-way stops the archive without leaks or unhandled errors', { timeout: SAFETY_NET_MS }, async (t) => {
  const dir = await makeCheckpoint(await tempDir(t, 'chango-archive'));
  const archive = createArchiveStream(dir, await manifestOf(dir), { gzipLevel: 1 });
  let seen = 0;
  const quitter = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      callback(seen > 100_000 ? new Error('upload aborted') : null);
    },
  });
  await assert.rejects(pipeline(archive, quitter), /upload aborted/);
  assert.ok(archive.destroyed);
});

test('archive: a manifest path that leaves its store folder is refused', async (t) => {
  const dir = await makeCheckpoint(await tempDir(t, 'chango-archive'));
  const manifest = await manifestOf(dir);
  manifest.stores.kms.files.push({ path: 'kms/../../etc/passwd', size: 1, sha256: '00' });
  assert.match((await archiveError(dir, manifest)).message, /not a plain path inside kms\//);
});
