import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { collectStats, isStateError, STORE_NAMES } from '@chango/state';
import { seedState } from '@chango/seed';
import { newRootSecret, tempDir, waitFor } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';
import { ldb } from '../../testkit/processes.js';
import { startProvisioningWriter } from '../../testkit/provisioning-writer.js';
import { openState } from '../../testkit/state.js';

test('checkpoints taken while a writer keeps changing iam, metadata and kms are each one point in time', async (t) => {
  const dataDir = await tempDir(t);
  const checkpointsDir = await tempDir(t, 'chango-checkpoint');
  const secret = newRootSecret();
  const state = await openState(dataDir, secret, true);
  await seedState(state, { users: 5, components: 1000 });
  const writer = startProvisioningWriter(state);
  t.after(async () => {
    await writer.stop();
    await state.close();
  });
  // Several checkpoints, each at a random moment of the writer's stream: a torn one would show in any of them.
  for (let round = 0; round < 5; round++) {
    const before = writer.committed;
    // The writer commits as fast as it can: no interval to derive from, so the safety net bounds a stalled one.
    await waitFor('the writer to commit 20 more transactions', async () => (writer.committed >= before + 20 ? true : undefined), SAFETY_NET_MS, 2);
    const checkpointDir = join(checkpointsDir, `cp-${round}`);
    const atStart = writer.committed;
    const report = await state.checkpoint(checkpointDir);
    const atEnd = writer.committed;
    assert.ok(atEnd > atStart, 'the writer kept committing while the checkpoint was copied');
    assert.ok(report.writerPauseMs >= 0 && report.writerPauseMs < report.durationMs, `pause ${report.writerPauseMs} ms of ${report.durationMs} ms`);

    const copy = await openState(checkpointDir, secret);
    try {
      // Every secret in the copy opens: no access key sealed with a KEK the copied kms lacks.
      const stats = await collectStats(copy);
      assert.equal(stats.metadata.records, report.stores.metadata.records);
      assert.equal(stats.iam.records, report.stores.iam.records);

      const components = new Map<string, string>();
      for await (const [, c] of copy.metadata.components()) if (c.id.startsWith('svc-')) components.set(c.id, c.config.accessKeyId ?? '');
      const keys = new Map<string, string>();
      for await (const [, k] of copy.iam.accessKeys()) if (k.id.startsWith('AKSVC')) keys.set(k.id, k.user);
      assert.ok(components.size >= atStart && components.size <= atEnd, `copy holds ${components.size}, between ${atStart} and ${atEnd}`);
      assert.equal(keys.size, components.size, 'as many service access keys as service components');
      for (const [id, keyId] of components) assert.equal(keys.get(keyId), `component:${id}`, `${id} and its key ${keyId} agree`);
    } finally {
      await copy.close();
    }
  }
});

test('stock RocksDB ldb reads every store of a checkpoint', async (t) => {
  const dataDir = await tempDir(t);
  const checkpointDir = join(await tempDir(t, 'chango-checkpoint'), 'cp');
  const state = await openState(dataDir, newRootSecret(), true);
  t.after(() => state.close());
  await seedState(state, { users: 3, components: 40 });
  const report = await state.checkpoint(checkpointDir);
  for (const name of STORE_NAMES) {
    const lines = (await ldb([`--db=${join(checkpointDir, name)}`, 'scan'])).trim().split('\n');
    assert.equal(lines.length, report.stores[name].records, `${name}: ldb sees every record`);
  }
});

test('a checkpoint refuses a folder that already holds files', async (t) => {
  const dataDir = await tempDir(t);
  const busy = await tempDir(t, 'chango-checkpoint');
  await writeFile(join(busy, 'something'), 'x');
  const state = await openState(dataDir, newRootSecret(), true);
  t.after(() => state.close());
  await assert.rejects(state.checkpoint(busy), (err) => isStateError(err, 'CHECKPOINT_TARGET_EXISTS'));
});
