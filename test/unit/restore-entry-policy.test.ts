import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRestoreError, planEntry } from '@chango/restore';

/** Asserts planEntry refuses the header as ARCHIVE_UNSAFE_ENTRY with a message matching `words`. */
function refused(header: { name: string; type: string | null; linkname?: string }, words: RegExp): void {
  assert.throws(
    () => planEntry(header),
    (err) => isRestoreError(err, 'ARCHIVE_UNSAFE_ENTRY') && words.test(err.message) && err.message.includes(JSON.stringify(header.name)),
    `${JSON.stringify(header)} refused with ${String(words)}`,
  );
}

test('restore entry policy: the entries the archive writer produces are planned', () => {
  assert.deepEqual(planEntry({ name: 'manifest.json', type: 'file' }), { kind: 'manifest' });
  assert.deepEqual(planEntry({ name: 'kms/', type: 'directory' }), { kind: 'directory', path: 'kms', store: 'kms' });
  assert.deepEqual(planEntry({ name: 'metadata/archive/', type: 'directory' }), { kind: 'directory', path: 'metadata/archive', store: 'metadata' });
  assert.deepEqual(planEntry({ name: 'iam/000012.sst', type: 'file' }), { kind: 'file', path: 'iam/000012.sst', store: 'iam' });
  assert.deepEqual(planEntry({ name: 'metadata/archive/000001.log', type: 'file' }), { kind: 'file', path: 'metadata/archive/000001.log', store: 'metadata' });
  // A folder entry without the trailing slash (some tars write them so) is the same folder.
  assert.deepEqual(planEntry({ name: 'iam', type: 'directory' }), { kind: 'directory', path: 'iam', store: 'iam' });
});

test('restore entry policy: plain names outside the stores are left for the extractor to judge by position', () => {
  assert.deepEqual(planEntry({ name: 'README', type: 'file' }), { kind: 'outside', path: 'README' });
  assert.deepEqual(planEntry({ name: 'etc/passwd', type: 'file' }), { kind: 'outside', path: 'etc/passwd' });
  assert.deepEqual(planEntry({ name: 'kmsx/CURRENT', type: 'file' }), { kind: 'outside', path: 'kmsx/CURRENT' });
  assert.deepEqual(planEntry({ name: 'manifest.json/', type: 'directory' }), { kind: 'outside', path: 'manifest.json' });
});

test('restore entry policy: names that could leave the target are refused', () => {
  refused({ name: '../evil', type: 'file' }, /climbs out of the target with '\.\.'/);
  refused({ name: 'kms/../../evil', type: 'file' }, /climbs out/);
  refused({ name: 'kms/..', type: 'directory' }, /climbs out/);
  refused({ name: '/tmp/chango-evil', type: 'file' }, /is an absolute path/);
  refused({ name: '/', type: 'directory' }, /is an absolute path/);
  refused({ name: 'kms\\..\\..\\evil', type: 'file' }, /backslash/);
  refused({ name: 'kms/a\0b', type: 'file' }, /NUL byte/);
  refused({ name: 'kms/\u001b[2Jx', type: 'file' }, /control character/);
  refused({ name: '', type: 'file' }, /empty name/);
  refused({ name: './kms/CURRENT', type: 'file' }, /not a plain relative path/);
  refused({ name: 'kms//CURRENT', type: 'file' }, /not a plain relative path/);
  refused({ name: 'kms', type: 'file' }, /a file where the kms\/ store folder belongs/);
});

test('restore entry policy: every entry type but regular files and folders is refused, naming the type', () => {
  refused({ name: 'kms/LINK', type: 'symlink', linkname: '/etc/passwd' }, /is a symbolic link pointing to "\/etc\/passwd"/);
  refused({ name: 'kms/HARD', type: 'link', linkname: 'manifest.json' }, /is a hard link/);
  refused({ name: 'kms/null', type: 'character-device' }, /is a character device/);
  refused({ name: 'kms/sda', type: 'block-device' }, /is a block device/);
  refused({ name: 'kms/pipe', type: 'fifo' }, /is a FIFO/);
  refused({ name: 'kms/old', type: 'contiguous-file' }, /contiguous file/);
  refused({ name: 'kms/what', type: null }, /unknown tar type/);
  // The type is checked first: a symlink called manifest.json is no manifest.
  refused({ name: 'manifest.json', type: 'symlink', linkname: '/etc/shadow' }, /symbolic link/);
});

test('restore entry policy: a hostile name is quoted in the message, control characters escaped', () => {
  try {
    planEntry({ name: 'kms/\u001b]0;owned\u0007', type: 'file' });
    assert.fail('accepted');
  } catch (err) {
    assert.ok(isRestoreError(err, 'ARCHIVE_UNSAFE_ENTRY'));
    assert.ok(!/[\u0000-\u001f]/u.test(err.message), 'no raw control character reaches the message');
    assert.ok(err.message.includes('\\u001b'), err.message);
  }
});
