import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serializeManifest, type Manifest } from '@chango/archive';
import { isRestoreError, parseManifest } from '@chango/restore';

const sha = (c: string) => c.repeat(64);

function manifest(): Manifest {
  return {
    format: 1,
    backupId: '3b241101-e2bb-4255-8caf-4136c566a962',
    timestamp: '2025-01-02T03:04:05.678Z',
    hostname: 'master-1',
    chango: { version: '2.4.1' },
    stores: {
      kms: { records: 3, files: [{ path: 'kms/CURRENT', size: 16, sha256: sha('a') }] },
      iam: { records: 120, files: [{ path: 'iam/000012.sst', size: 5_000_000, sha256: sha('b') }] },
      metadata: { records: 0, files: [{ path: 'metadata/archive/000001.log', size: 0, sha256: sha('c') }] },
    },
  };
}

function rejected(value: unknown, words: RegExp): void {
  const bytes = typeof value === 'string' ? Buffer.from(value) : Buffer.from(JSON.stringify(value));
  assert.throws(
    () => parseManifest(bytes),
    (err) => isRestoreError(err, 'MANIFEST_MISSING') && words.test(err.message),
    `rejected with ${String(words)}`,
  );
}

test('restore manifest: what the archive writer serializes parses back to the same manifest', () => {
  assert.deepEqual(parseManifest(serializeManifest(manifest())), manifest());
});

test('restore manifest: fields a later writer may add are dropped, not refused', () => {
  const withExtra = { ...manifest(), compression: 'gzip', stores: { ...manifest().stores, kms: { ...manifest().stores.kms, note: 'x' } } };
  assert.deepEqual(parseManifest(Buffer.from(JSON.stringify(withExtra))), manifest());
});

test('restore manifest: bytes that are not JSON are refused in words', () => {
  rejected('{"format": 1, ', /not JSON/);
  rejected('\u0000\u0001binary', /not JSON/);
});

test('restore manifest: a wrong shape is refused, naming the field', () => {
  rejected({ ...manifest(), format: 2 }, /format/);
  rejected({ ...manifest(), timestamp: 'yesterday' }, /timestamp/);
  const { stores: _stores, ...noStores } = manifest();
  rejected(noStores, /stores/);
  const negative = manifest();
  negative.stores.iam.records = -1;
  rejected(negative, /stores\.iam\.records/);
  const badSha = manifest();
  (badSha.stores.kms.files[0] as { sha256: string }).sha256 = 'ABC';
  rejected(badSha, /stores\.kms\.files\.0\.sha256: must be a lowercase hex SHA-256/);
  const fraction = manifest();
  (fraction.stores.kms.files[0] as { size: number }).size = 1.5;
  rejected(fraction, /stores\.kms\.files\.0\.size/);
});

test('restore manifest: paths must stay inside their own store folder and appear once', () => {
  const escape = manifest();
  escape.stores.kms.files.push({ path: 'kms/../../etc/passwd', size: 1, sha256: sha('d') });
  rejected(escape, /"kms\/\.\.\/\.\.\/etc\/passwd" climbs out/);
  const absolute = manifest();
  absolute.stores.iam.files.push({ path: '/etc/passwd', size: 1, sha256: sha('d') });
  rejected(absolute, /"\/etc\/passwd" is an absolute path/);
  const otherStore = manifest();
  otherStore.stores.kms.files.push({ path: 'iam/000099.sst', size: 1, sha256: sha('d') });
  rejected(otherStore, /"iam\/000099\.sst" is not inside the kms\/ store folder/);
  const twice = manifest();
  twice.stores.kms.files.push({ path: 'kms/CURRENT', size: 16, sha256: sha('a') });
  rejected(twice, /lists "kms\/CURRENT" twice/);
});
