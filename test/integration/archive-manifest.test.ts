import assert from 'node:assert/strict';
import { execFile as execFileCb } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { buildManifest, serializeManifest, type ManifestInfo } from '@chango/archive';
import { tempDir } from '../../testkit/fixtures.js';

const execFile = promisify(execFileCb);

const info: ManifestInfo = {
  backupId: 'f47ac10b-58cc-4372-a567-0e02b2c3d479',
  timestamp: new Date(Date.UTC(2025, 5, 7, 8, 9, 10, 11)),
  hostname: 'master-2',
  changoVersion: '3.0.0',
  records: { kms: 5, iam: 0, metadata: 17 },
};

async function makeStores(root: string): Promise<Record<string, Buffer>> {
  const files: Record<string, Buffer> = {
    'kms/b.sst': randomBytes(2 * 1024 * 1024 + 3), // more than one 1 MiB hashing read
    'kms/a.sst': randomBytes(10),
    'kms/CURRENT': Buffer.from('MANIFEST-000001\n'),
    'iam/LOCK': Buffer.alloc(0),
    'metadata/sub/x.log': randomBytes(7),
    'metadata/OPTIONS': Buffer.from('x'),
  };
  for (const store of ['kms', 'iam', 'metadata']) await mkdir(join(root, store), { recursive: true });
  for (const [path, bytes] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), bytes);
  }
  return files;
}

test('manifest: every regular file of each store, sorted by path, with size and SHA-256', async (t) => {
  const root = await tempDir(t, 'chango-manifest');
  const files = await makeStores(root);
  const manifest = await buildManifest(root, info);

  assert.equal(manifest.format, 1);
  assert.equal(manifest.backupId, info.backupId);
  assert.equal(manifest.timestamp, '2025-06-07T08:09:10.011Z');
  assert.equal(manifest.hostname, 'master-2');
  assert.deepEqual(manifest.chango, { version: '3.0.0' });
  assert.deepEqual(
    manifest.stores.kms.files.map((f) => f.path),
    ['kms/CURRENT', 'kms/a.sst', 'kms/b.sst'], // byte order: uppercase first
  );
  assert.deepEqual(manifest.stores.iam.files.map((f) => f.path), ['iam/LOCK']);
  assert.equal(manifest.stores.iam.records, 0);
  assert.deepEqual(
    manifest.stores.metadata.files.map((f) => f.path),
    ['metadata/OPTIONS', 'metadata/sub/x.log'],
  );
  assert.equal(manifest.stores.metadata.records, 17);

  for (const store of ['kms', 'iam', 'metadata'] as const) {
    for (const f of manifest.stores[store].files) {
      const bytes = files[f.path];
      assert.ok(bytes, `${f.path} is one of the files`);
      assert.equal(f.size, bytes.length);
      assert.equal(f.sha256, createHash('sha256').update(bytes).digest('hex'));
    }
  }
  // An independent tool agrees on the big file's digest.
  const { stdout } = await execFile('sha256sum', [join(root, 'kms', 'b.sst')]);
  assert.equal(manifest.stores.kms.files[2]?.sha256, stdout.split(' ')[0]);
});

test('manifest: serialized as two-space JSON with a trailing newline', async (t) => {
  const root = await tempDir(t, 'chango-manifest');
  await makeStores(root);
  const manifest = await buildManifest(root, info);
  const text = serializeManifest(manifest).toString('utf8');
  assert.ok(text.endsWith('}\n'));
  assert.ok(text.startsWith('{\n  "format": 1,\n  "backupId": '));
  assert.deepEqual(JSON.parse(text), manifest);
});

test('manifest: a symlink inside a store folder is refused, naming it', async (t) => {
  const root = await tempDir(t, 'chango-manifest');
  await makeStores(root);
  await symlink('/etc/passwd', join(root, 'iam', 'passwd'));
  await assert.rejects(buildManifest(root, info), (err: Error) => {
    assert.match(err.message, /iam\/passwd/);
    assert.match(err.message, /symbolic link/);
    return true;
  });
});

test('manifest: a missing or symlinked store folder is refused, naming the store', async (t) => {
  const root = await tempDir(t, 'chango-manifest');
  await makeStores(root);
  await rm(join(root, 'metadata'), { recursive: true });
  await assert.rejects(buildManifest(root, info), /no metadata\/ store folder/);

  await symlink(join(root, 'kms'), join(root, 'metadata'));
  await assert.rejects(buildManifest(root, info), /store metadata .* is not a plain folder \(symbolic link\)/);
});

test('manifest: a FIFO is refused; bad record counts are refused', async (t) => {
  const root = await tempDir(t, 'chango-manifest');
  await makeStores(root);
  await assert.rejects(buildManifest(root, { ...info, records: { ...info.records, iam: -1 } }), /record count of store iam/);
  await execFile('mkfifo', [join(root, 'kms', 'pipe')]);
  await assert.rejects(buildManifest(root, info), /kms\/pipe: not a regular file or folder \(FIFO\)/);
});
