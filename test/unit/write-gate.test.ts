import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WriteGate } from '@chango/state';

test('exclusive work runs only after commits in flight have finished', async () => {
  const gate = new WriteGate();
  const events: string[] = [];
  const commit = gate.shared(async () => {
    events.push('commit start');
    await sleep(30);
    events.push('commit end');
  });
  const snapshot = gate.exclusive(() => events.push('snapshot'));
  await Promise.all([commit, snapshot]);
  assert.deepEqual(events, ['commit start', 'commit end', 'snapshot']);
});

test('commits asked for while the gate is closed wait, then all run', async () => {
  const gate = new WriteGate();
  const events: string[] = [];
  const first = gate.shared(async () => {
    await sleep(20);
    events.push('first');
  });
  const snapshot = gate.exclusive(() => events.push('snapshot'));
  const late = gate.shared(async () => {
    events.push('late');
  });
  const { pauseMs } = await snapshot;
  await Promise.all([first, late]);
  assert.deepEqual(events, ['first', 'snapshot', 'late']);
  assert.ok(pauseMs >= 15, `pause covers the wait for the commit in flight (${pauseMs} ms)`);
});

test('a failing commit still lets the gate close afterwards', async () => {
  const gate = new WriteGate();
  await assert.rejects(gate.shared(async () => Promise.reject(new Error('disk full'))), /disk full/);
  const { value } = await gate.exclusive(() => 'closed fine');
  assert.equal(value, 'closed fine');
});
