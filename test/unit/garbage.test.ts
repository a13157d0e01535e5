import assert from 'node:assert/strict';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { test } from 'node:test';
import { collectGarbage, YoungGarbage } from '@chango/state';

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

test('a copy that passes 256 MiB through short-lived Buffers gets a scavenge for every 8 MiB', async () => {
  const garbage = new YoungGarbage(8 * MiB);
  // Each Buffer is garbage at once, as a copied record's value is: V8 alone would hardly ever scavenge for them.
  const minor = await collectionsDuring(constants.NODE_PERFORMANCE_GC_MINOR, async () => {
    for (let i = 0; i < 256; i++) {
      garbage.passed(Buffer.alloc(MiB, i).length);
      if (i % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  });
  assert.ok(minor >= 256 / 8, `at least ${256 / 8} young-generation collections, saw ${minor}`);
});

test('bytes below the threshold cost no collection', async () => {
  const garbage = new YoungGarbage(64 * MiB);
  const minor = await collectionsDuring(constants.NODE_PERFORMANCE_GC_MINOR, async () => {
    for (let i = 0; i < 1000; i++) garbage.passed(1024);
  });
  assert.ok(minor < 3, `1000 small passes under the threshold ran ${minor} collections`);
});

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
