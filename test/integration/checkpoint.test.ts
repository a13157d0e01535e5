import assert from 'node:assert/strict';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { collectStats, ControlPlaneState, isStateError, metadataWrites, RocksStore, STORE_NAMES, type CheckpointOptions, type CheckpointReport } from '@chango/state';
import { describeCheckpoint } from '@chango/archive';
import { seedState } from '@chango/seed';
import { newRootSecret, tempDir, waitFor } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';
import { ldb } from '../../testkit/processes.js';
import { startProvisioningWriter } from '../../testkit/provisioning-writer.js';
import { openState } from '../../testkit/state.js';
import { isRoot, Tmpfs } from '../../testkit/tmpfs.js';

test('checkpoints taken while a writer keeps changing iam, metadata and kms are each one point in time', async (t) => {
  const dataDir = await tempDir(t);
  const checkpointsDir = await tempDir(t, 'chango-checkpoint');
  const secret = newRootSecret();
  const state = await openState(dataDir, secret, true);
  await seedState(state, { users: 5, components: 1000 });
  await whileWriting(state, async (writer) => {
    // Several checkpoints, each at a random moment of the writer's stream: a torn one would show in any of them.
    for (let round = 0; round < 5; round++) {
      const checkpointDir = join(checkpointsDir, `cp-${round}`);
      const { report, atStart, atEnd } = await checkpointAfterCommits(state, writer, 20, checkpointDir);
      assert.ok(atEnd > atStart, 'the writer kept committing while the checkpoint was copied');
      assert.ok(report.writerPauseMs >= 0 && report.writerPauseMs < report.durationMs, `pause ${report.writerPauseMs} ms of ${report.durationMs} ms`);

      await assertOnePointInTime(checkpointDir, secret, report, atStart, atEnd);
    }
  });
});

type Writer = ReturnType<typeof startProvisioningWriter>;

/**
 * Runs `body` while a writer keeps committing, then stops it and closes the state — in the test itself, not
 * in an `after` hook: hooks run in the order registered, so tempDir's removal of the stores would come
 * first, under a writer still flushing new files into them.
 */
async function whileWriting(state: ControlPlaneState, body: (writer: Writer) => Promise<void>): Promise<void> {
  const writer = startProvisioningWriter(state);
  try {
    await body(writer);
  } finally {
    await writer.stop();
    await state.close();
  }
}

/** Waits for `commits` more commits of the writer, then checkpoints into `dir` while it goes on; `atStart`/`atEnd`: its count then. */
async function checkpointAfterCommits<Alongside = undefined>(
  state: ControlPlaneState,
  writer: Writer,
  commits: number,
  dir: string,
  options: CheckpointOptions<Alongside> = {},
): Promise<{ report: CheckpointReport<Alongside>; atStart: number; atEnd: number }> {
  const before = writer.committed;
  // The writer commits as fast as it can: no interval to derive from, so the safety net bounds a stalled one.
  await waitFor(`the writer to commit ${commits} more transactions`, async () => (writer.committed >= before + commits ? true : undefined), SAFETY_NET_MS, 2);
  const atStart = writer.committed;
  const report = await state.checkpoint(dir, options);
  return { report, atStart, atEnd: writer.committed };
}

/** The checkpoint opens, its counts are right, and it holds the writer's work up to one commit between `atStart` and `atEnd`, whole. */
async function assertOnePointInTime(checkpointDir: string, secret: string, report: CheckpointReport<unknown>, atStart: number, atEnd: number): Promise<void> {
  const copy = await openState(checkpointDir, secret);
  try {
    // Every secret in the copy opens: no access key sealed with a KEK the copied kms lacks.
    const stats = await collectStats(copy);
    assert.equal(stats.metadata.records, report.stores.metadata.records);
    assert.equal(stats.iam.records, report.stores.iam.records);
    assert.equal(stats.kms.records, report.stores.kms.records);

    const components = new Map<string, string>();
    for await (const [, c] of copy.metadata.components()) if (c.id.startsWith('svc-')) components.set(c.id, c.config.accessKeyId ?? '');
    const keys = new Map<string, string>();
    for await (const [, k] of copy.iam.accessKeys()) if (k.id.startsWith('AKSVC')) keys.set(k.id, k.user);
    assert.ok(components.size >= atStart && components.size <= atEnd, `copy holds ${components.size}, between ${atStart} and ${atEnd}`);
    assert.equal(keys.size, components.size, 'as many service access keys as service components');
    for (const [id, keyId] of components) assert.equal(keys.get(keyId), `component:${id}`, `${id} and its key ${keyId} agree`);
    // The writer's components are numbered in commit order: a point in time holds a prefix of them, no gap.
    for (let i = 0; i < components.size; i++) assert.ok(components.has(`svc-${i}`), `svc-${i} is there (the copy holds ${components.size})`);
  } finally {
    await copy.close();
  }
}

test('checkpoints stay whole while RocksDB flushes and compacts all the time under them', async (t) => {
  const dataDir = await tempDir(t);
  const checkpointsDir = await tempDir(t, 'chango-checkpoint');
  const secret = newRootSecret();
  // 64 KiB memtables: a flush every few commits and compactions behind them, so that tables come and go while
  // checkpoints are captured — the race a capture must survive (or notice and take again).
  const state = await ControlPlaneState.open({ dataDir, rootSecret: Buffer.from(secret), create: true, tuning: { writeBufferSize: 64 * 1024 } });
  await seedState(state, { users: 5, components: 2000 });
  const tablesSeen = new Set<string>();
  let retakes = 0;
  await whileWriting(state, async (writer) => {
    for (let round = 0; round < 12; round++) {
      const checkpointDir = join(checkpointsDir, `cp-${round}`);
      let described = 0;
      const describe = (dir: string) => {
        described += 1;
        return describeCheckpoint(dir);
      };
      // ≈ 200 commits fill a 64 KiB memtable of the metadata store: about one flush per round, and compactions after them.
      const { report, atStart, atEnd } = await checkpointAfterCommits(state, writer, 200, checkpointDir, { alongside: describe });
      for (const store of STORE_NAMES) for (const name of await readdir(join(checkpointDir, store))) if (name.endsWith('.sst')) tablesSeen.add(`${store}/${name}`);
      retakes += report.attempts - 1;
      // What the backup hashes while the records are counted is the checkpoint returned, even after a retake
      // (a capture torn before its count — a table gone before its link — is not described at all).
      assert.ok(described >= 1 && described <= report.attempts, `described ${described} time(s) in ${report.attempts} capture(s)`);
      assert.deepEqual(report.alongside, await describeCheckpoint(checkpointDir));
      await assertOnePointInTime(checkpointDir, secret, report, atStart, atEnd);
    }
  });
  // Not quiet stores: the tables changed between the rounds.
  assert.ok(tablesSeen.size > 24, `the stores' tables changed under the checkpoints (${tablesSeen.size} seen)`);
  t.diagnostic(`${tablesSeen.size} tables seen over 12 checkpoints; ${retakes} capture(s) taken again`);
});

test('a checkpoint shares only table files with the live stores, and never a file that is written to', async (t) => {
  const dataDir = await tempDir(t);
  const checkpointDir = join(await tempDir(t, 'chango-checkpoint'), 'cp');
  const secret = newRootSecret();
  const state = await ControlPlaneState.open({ dataDir, rootSecret: Buffer.from(secret), create: true, tuning: { writeBufferSize: 64 * 1024 } });
  t.after(() => state.close());
  await seedState(state, { users: 3, components: 500 });
  const report = await state.checkpoint(checkpointDir);
  assert.equal(report.linked, true, 'the work dir is on the stores\' filesystem: tables are linked, not copied');
  for (const store of STORE_NAMES) {
    const live = new Map<string, number>();
    for (const name of await readdir(join(dataDir, store))) live.set(name, (await stat(join(dataDir, store, name))).ino);
    for (const name of await readdir(join(checkpointDir, store))) {
      const { ino } = await stat(join(checkpointDir, store, name));
      const sharesInode = [...live.values()].includes(ino);
      if (name.endsWith('.sst')) assert.equal(live.get(name), ino, `${store}/${name} is the live table itself (a hard link)`);
      else assert.equal(sharesInode, false, `${store}/${name} is a file of its own, not the live one`);
    }
  }
  // Writes after the checkpoint do not reach it, and opening it (as a restore does) leaves the live stores alone.
  const createdAt = new Date().toISOString();
  await state.commit((tx) => metadataWrites.putComponent(tx, { id: 'after-the-checkpoint', kind: 'kiok', version: '0.18.3', cluster: 'c1', nodeId: 'nm-1', config: {}, createdAt }));
  const copy = await openState(checkpointDir, secret);
  const stats = await collectStats(copy);
  await copy.close();
  assert.equal(stats.metadata.records, report.stores.metadata.records);
});

test('a checkpoint into another filesystem is a copy, and leaves nothing beside the stores', { skip: isRoot() ? false : 'needs root to mount a tmpfs' }, async (t) => {
  const dataDir = await tempDir(t);
  const secret = newRootSecret();
  const state = await openState(dataDir, secret, true);
  t.after(() => state.close());
  await seedState(state, { users: 3, components: 300 });
  const other = await Tmpfs.mount(t, '64m');
  const checkpointDir = join(other.dir, 'cp');
  const report = await state.checkpoint(checkpointDir);
  assert.equal(report.linked, false);
  assert.deepEqual((await readdir(dataDir)).sort(), [...STORE_NAMES].sort(), 'the staging folder is gone');
  const copy = await openState(checkpointDir, secret);
  const stats = await collectStats(copy);
  await copy.close();
  assert.equal(stats.iam.records, report.stores.iam.records);
  assert.equal(stats.metadata.records, report.stores.metadata.records);
});

test('a checkpoint missing one of its tables does not count as read back', async (t) => {
  // The capture relies on this: a table compacted away between the capture and its link must fail the count.
  const dataDir = await tempDir(t);
  const checkpointsDir = await tempDir(t, 'chango-checkpoint');
  const state = await ControlPlaneState.open({ dataDir, rootSecret: Buffer.from(newRootSecret()), create: true, tuning: { writeBufferSize: 64 * 1024 } });
  t.after(() => state.close());
  await seedState(state, { users: 3, components: 2000 });
  // A checkpoint taken while RocksDB still flushes holds that data as logs, not tables: take one that has a table.
  let checkpointDir = '';
  let tables: string[] = [];
  for (let attempt = 0; tables.length === 0; attempt++) {
    assert.ok(attempt < 20, 'RocksDB flushed a table of the metadata store within 20 checkpoints');
    checkpointDir = join(checkpointsDir, `cp-${attempt}`);
    await state.checkpoint(checkpointDir);
    tables = (await readdir(join(checkpointDir, 'metadata'))).filter((name) => name.endsWith('.sst'));
  }
  await rm(join(checkpointDir, 'metadata', tables[0]!));
  const store = await RocksStore.open(join(checkpointDir, 'metadata'), { create: false, readOnly: true }).catch((err: Error) => err);
  if (store instanceof Error) return assert.match(store.message, /No such file|not found|Corruption/i);
  await assert.rejects(store.countRecords().finally(() => store.close()), /No such file|Corruption/i);
});

test('opening the state removes what a killed checkpoint left beside the stores', async (t) => {
  const dataDir = await tempDir(t);
  const secret = newRootSecret();
  await (await openState(dataDir, secret, true)).close();
  await mkdir(join(dataDir, '.checkpoint-staging', 'some-backup', 'kms'), { recursive: true });
  await writeFile(join(dataDir, '.checkpoint-staging', 'some-backup', 'kms', '000012.sst'), 'x');
  const state = await openState(dataDir, secret);
  await state.close();
  assert.deepEqual((await readdir(dataDir)).sort(), [...STORE_NAMES].sort());
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

test('a checkpoint whose work alongside the count fails is removed, with that failure', async (t) => {
  const dataDir = await tempDir(t);
  const checkpointDir = join(await tempDir(t, 'chango-checkpoint'), 'cp');
  const state = await openState(dataDir, newRootSecret(), true);
  t.after(() => state.close());
  await seedState(state, { users: 3, components: 40 });
  const failing = async (): Promise<never> => {
    throw new Error('reading 000012.sst: Input/output error');
  };
  await assert.rejects(state.checkpoint(checkpointDir, { alongside: failing }), /Input\/output error/);
  await assert.rejects(stat(checkpointDir), { code: 'ENOENT' }, 'no half checkpoint is left');
});

test('a checkpoint refuses a folder that already holds files', async (t) => {
  const dataDir = await tempDir(t);
  const busy = await tempDir(t, 'chango-checkpoint');
  await writeFile(join(busy, 'something'), 'x');
  const state = await openState(dataDir, newRootSecret(), true);
  t.after(() => state.close());
  await assert.rejects(state.checkpoint(busy), (err) => isStateError(err, 'CHECKPOINT_TARGET_EXISTS'));
});
