import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { looksLikeBackupKey, makeBackupKey, parseBackupKey, parseLeaseValue, parseSidecar, sidecarBody, sidecarKey } from '@chango/contracts';

test('a backup key has the prefix, a sortable UTC timestamp and the uuid', () => {
  const id = randomUUID();
  const key = makeBackupKey('prod/', new Date('2026-11-25T03:04:05.678Z'), id);
  assert.equal(key, `prod/chango-20261125T030405Z-${id}.tar.gz`);
  const parsed = parseBackupKey('prod/', key);
  assert.equal(parsed?.backupId, id);
  assert.equal(parsed?.timestamp.toISOString(), '2026-11-25T03:04:05.000Z');
});

test('an encrypted archive is <key>.tar.gz.age; its sidecar and drill record follow it', () => {
  const id = randomUUID();
  const key = makeBackupKey('prod/', new Date('2026-11-25T03:04:05.678Z'), id, { encrypted: true });
  assert.equal(key, `prod/chango-20261125T030405Z-${id}.tar.gz.age`);
  assert.deepEqual({ ...parseBackupKey('prod/', key), timestamp: undefined }, { key, backupId: id, encrypted: true, timestamp: undefined });
  assert.equal(parseBackupKey('prod/', makeBackupKey('prod/', new Date(), id))?.encrypted, false);
  assert.ok(looksLikeBackupKey(key));
  assert.equal(parseBackupKey('prod/', sidecarKey(key)), undefined);
  assert.equal(parseBackupKey('prod/', `${key}.age`), undefined);
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

test('looksLikeBackupKey accepts our archive names under any prefix and nothing else', () => {
  assert.ok(looksLikeBackupKey('prod/chango-20261125T030000Z-0f8fad5b-d9cb-469f-a165-70867728950e.tar.gz'));
  assert.ok(looksLikeBackupKey('chango-20261125T030000Z-0f8fad5b-d9cb-469f-a165-70867728950e.tar.gz'));
  assert.ok(!looksLikeBackupKey('prod/chango-20261125T030000Z-0f8fad5b-d9cb-469f-a165-70867728950e.tar.gz.sha256'));
  assert.ok(!looksLikeBackupKey('../etc/passwd'));
  assert.ok(!looksLikeBackupKey('prod/notes.txt'));
});

test('parseLeaseValue reads the leader lease and refuses anything else', () => {
  assert.deepEqual(parseLeaseValue('7|master-2|1764039600000'), { epoch: 7, nodeId: 'master-2', since: '2025-11-25T03:00:00.000Z' });
  assert.equal(parseLeaseValue(null), null);
  assert.equal(parseLeaseValue('master-2'), null);
  assert.equal(parseLeaseValue('x|master-2|1'), null);
});
