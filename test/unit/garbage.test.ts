import assert from 'node:assert/strict';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { test } from 'node:test';
import { BufferGarbage, collectGarbage } from '@chango/state';

const MiB = 1024 * 1024;

/** Counts V8's collections of one kind while `work` runs (GC entries arrive after it, hence the turn at the end). */
async function collectionsDuring(kind: number, work: () => Promise<void>): Promise<number> {
  let count = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (((entry as PerformanceEntry & { detail?: { kind?: number } }).detail)?.kind === kind) count++;
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    await work();
    await new Promise((resolve) => setTimeout(resolve, 50));
  } finally {
    observer.disconnect();
  }
  return count;
}

test('collectGarbage runs a full collection, and the memory of dead Buffers is given back', async () => {
  // 16 MiB of Buffers (under the external-memory mark at which V8 would collect by itself), then dropped.
  const holder = { buffers: Array.from({ length: 16 }, (_, i) => Buffer.alloc(MiB, i)) };
  const before = process.memoryUsage().arrayBuffers;
  assert.ok(before >= 16 * MiB);
  holder.buffers = [];
  const major = await collectionsDuring(constants.NODE_PERFORMANCE_GC_MAJOR, async () => collectGarbage());
  assert.ok(major >= 1, `one full collection, saw ${major}`);
  const after = process.memoryUsage().arrayBuffers;
  assert.ok(before - after >= 15 * MiB, `the 16 MiB of dead Buffers are freed: ${Math.round(before / MiB)} -> ${Math.round(after / MiB)} MiB`);
});

test('BufferGarbage keeps the dead Buffers of a stream within its slack, where V8 alone lets some 64 MiB pile up', async () => {
  const slack = 16 * MiB;
  const garbage = new BufferGarbage(slack, MiB);
  const start = process.memoryUsage().arrayBuffers;
  let most = 0;
  // 384 MiB through 1 MiB Buffers, each dead at once: a stream's reads and gzip members.
  for (let i = 0; i < 384; i++) {
    garbage.passed(Buffer.alloc(MiB, i).length);
    most = Math.max(most, process.memoryUsage().arrayBuffers - start);
    if (i % 16 === 0) await new Promise((resolve) => setImmediate(resolve)); // lets V8 free what it collected
  }
  assert.ok(garbage.collections >= 384 / 32, `collected every slack's worth or so: ${garbage.collections} collections`);
  // The slack, plus what the concurrent freeing after a collection has not caught up with yet.
  assert.ok(most <= slack + 16 * MiB, `dead Buffers peaked at ${Math.round(most / MiB)} MiB over the start`);
});
