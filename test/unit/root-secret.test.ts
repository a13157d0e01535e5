import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadRootSecret, isStateError } from '@chango/state';
import { tempDir } from '../../testkit/fixtures.js';

test('a root secret file is read as bytes, without its trailing newline', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'secret');
  await writeFile(file, 'x'.repeat(40) + '\n');
  assert.equal(loadRootSecret({ CHANGO_ROOT_SECRET_FILE: file }).toString(), 'x'.repeat(40));
});

test('the inline variable is used when no file is named', () => {
  assert.equal(loadRootSecret({ CHANGO_ROOT_SECRET: 'k'.repeat(32) }).length, 32);
});

test('no root secret at all names both ways to give one', () => {
  assert.throws(
    () => loadRootSecret({}),
    (err) => isStateError(err, 'ROOT_SECRET_MISSING') && /CHANGO_ROOT_SECRET_FILE/.test(err.message),
  );
});

test('a root secret shorter than 32 bytes is refused, and the message does not echo it', () => {
  const short = 'short-but-secret-value-31-bytes';
  assert.equal(short.length, 31);
  assert.throws(
    () => loadRootSecret({ CHANGO_ROOT_SECRET: short }),
    (err) => isStateError(err, 'ROOT_SECRET_TOO_SHORT') && /31 bytes; at least 32/.test(err.message) && !err.message.includes(short),
  );
});

test('both a file and an inline secret is ambiguous and refused', () => {
  assert.throws(
    () => loadRootSecret({ CHANGO_ROOT_SECRET_FILE: '/nonexistent', CHANGO_ROOT_SECRET: 'k'.repeat(32) }),
    (err) => isStateError(err, 'ROOT_SECRET_AMBIGUOUS'),
  );
});

test('an unreadable root secret file is named with the reason', () => {
  assert.throws(
    () => loadRootSecret({ CHANGO_ROOT_SECRET_FILE: '/nonexistent/secret' }),
    (err) => isStateError(err, 'ROOT_SECRET_UNREADABLE') && /\/nonexistent\/secret \(ENOENT\)/.test(err.message),
  );
});
