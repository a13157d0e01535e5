import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { makeBackupKey, parseBackupKey, parseSidecar, sidecarBody, sidecarKey } from '@chango/contracts';

test('a backup key has the prefix, a sortable UTC timestamp and the uuid', () => {
  const id = randomUUID();
  const key = makeBackupKey('prod/', new Date('2026-11-25T03:04:05.678Z'), id);
  assert.equal(key, `prod/chango-20261125T030405Z-${id}.tar.gz`);
  const parsed = parseBackupKey('prod/', key);
  assert.equal(parsed?.backupId, id);
  assert.equal(parsed?.timestamp.toISOString(), '2026-11-25T03:04:05.000Z');
});

test('keys that are not ours are not parsed as backups', () => {
  const id = randomUUID();
  for (const key of [
    `other/chango-20261125T030405Z-${id}.tar.gz`,
    `prod/chango-20261125T030405Z-${id}.tar.gz.sha256`,
    'prod/chango-20261125T030405Z-not-a-uuid.tar.gz',
    'prod/notes.txt',
    `prod/nested/chango-20261125T030405Z-${id}.tar.gz`,
  ]) {
    assert.equal(parseBackupKey('prod/', key), undefined, key);
  }
});

test('the sidecar is sha256sum output for the file name', () => {
  const sha = 'a'.repeat(64);
  const key = `prod/chango-20261125T030405Z-${randomUUID()}.tar.gz`;
  assert.equal(sidecarKey(key), `${key}.sha256`);
  const body = sidecarBody(key, sha);
  assert.equal(body, `${sha}  ${key.slice(5)}\n`);
  assert.equal(parseSidecar(body), sha);
  assert.equal(parseSidecar('garbage'), undefined);
});
