import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { seedState } from '@chango/seed';
import { newRootSecret, tempDir } from '../../testkit/fixtures.js';
import { openState } from '../../testkit/state.js';
import { Tmpfs } from '../../testkit/tmpfs.js';
import { ensureWorkSpace, freeBytes, stateBytes } from '../../apps/worker/src/work-space.js';

test('a checkpoint into a filesystem that fills up fails with the device\'s words, removes its copy, and leaves the process running', async (t) => {
  const dataDir = await tempDir(t);
  const state = await openState(dataDir, newRootSecret(), true);
  t.after(() => state.close());
  await seedState(state, { users: 5, components: 3000 });
  const size = await stateBytes(dataDir);
  // Far too small for the copy (another filesystem: the tables cannot be linked, they are copied): it fails part-way (ENOSPC).
  const small = await Tmpfs.mount(t, '1m');
  assert.ok(size > 4 * 1024 * 1024, `the state (${size} bytes) must be much larger than the filesystem`);

  // Before the fix the failed write came out as an unhandled rejection, which ends a Node process.
  const escaped: unknown[] = [];
  const onEscape = (reason: unknown) => escaped.push(reason);
  process.on('unhandledRejection', onEscape);
  t.after(() => process.off('unhandledRejection', onEscape));

  await assert.rejects(state.checkpoint(join(small.dir, 'cp')), /no space left on device/i);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(escaped, [], 'no rejection escaped the checkpoint');
  assert.deepEqual(await readdir(small.dir), [], 'the partial checkpoint was removed');

  // The worker refuses such a backup before writing a byte, in words that name the folder and both sizes.
  const refusal = await ensureWorkSpace(small.dir, size).then(
    () => assert.fail('a work dir smaller than the state must be refused'),
    (err: Error) => err,
  );
  assert.match(refusal.message, new RegExp(`^not enough free space in the work dir ${small.dir}: this backup needs about .* \\(${size * 2 + 8 * 1024 * 1024} bytes: 2 × the state's`));
  assert.match(refusal.message, new RegExp(`but only .* \\(${await freeBytes(small.dir)} bytes\\) are available`));

  // The same state checkpoints once there is room (the store was not harmed by the failure).
  await small.resize(`${Math.ceil((size * 3) / 1024 / 1024)}m`);
  await ensureWorkSpace(small.dir, size);
  const report = await state.checkpoint(join(small.dir, 'cp2'));
  assert.ok(report.stores.metadata.records > 3000);
});
