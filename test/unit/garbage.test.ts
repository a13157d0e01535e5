import assert from 'node:assert/strict';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { test } from 'node:test';
import { collectGarbage } from '@chango/state';

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
