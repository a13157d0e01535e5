/**
 * Throughput of the parallel gzip against single-stream zlib and GNU gzip, and
 * the effect of the chunk size. Not a test: run by hand on the target machine
 * (takes a few minutes). Runs are interleaved and repeated, and the median is
 * printed, because these shared machines are noisy.
 *
 *   node --import tsx bench/parallel-gzip.bench.ts [MiB] [reps]
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { createParallelGzip } from '@chango/archive';

const MiB = 1024 * 1024;
const totalMiB = Number(process.argv[2] ?? 200);
const reps = Number(process.argv[3] ?? 3);

interface Sample {
  mbps: number;
  /** CPU seconds of this process per wall second: how many cores were busy. */
  cores: number;
  maxLoopDelayMs: number;
  outBytes: number;
}

/** Incompressible, like RocksDB SSTs (already block-compressed). */
const random = Buffer.allocUnsafe(totalMiB * MiB);
for (let off = 0; off < random.length; off += 64 * MiB) randomFillSync(random, off, Math.min(64 * MiB, random.length - off));

/** Compressible: JavaScript sources from node_modules. */
function compressibleCorpus(limit: number): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  for (const entry of readdirSync('node_modules', { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.js')) continue;
    const b = readFileSync(join(entry.parentPath, entry.name));
    parts.push(b);
    size += b.length;
    if (size >= limit) break;
  }
  return Buffer.concat(parts).subarray(0, limit);
}

/** Pushes `input` in 64 KiB writes (like fs reads through archiver) through `make()` into a counting sink. */
async function run(input: Buffer, make: () => Duplex): Promise<Sample> {
  let outBytes = 0;
  const loop = monitorEventLoopDelay({ resolution: 5 });
  const source = Readable.from(
    (function* () {
      for (let off = 0; off < input.length; off += 64 * 1024) yield input.subarray(off, off + 64 * 1024);
    })(),
    { objectMode: false },
  );
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      outBytes += chunk.length;
      callback();
    },
  });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await pipeline(source, make(), sink);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  loop.disable();
  return {
    mbps: input.length / 1e6 / seconds,
    cores: (cpu.user + cpu.system) / 1e6 / seconds,
    maxLoopDelayMs: loop.max / 1e6,
    outBytes,
  };
}

function gnuGzip(file: string, level: number): Sample {
  const t0 = performance.now();
  const r = spawnSync('sh', ['-c', `gzip -${level} -c '${file}' > /dev/null`]);
  if (r.status !== 0) throw new Error(String(r.stderr));
  return { mbps: random.length / 1e6 / ((performance.now() - t0) / 1000), cores: NaN, maxLoopDelayMs: NaN, outBytes: NaN };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function report(name: string, samples: Sample[]): void {
  const pick = (f: (s: Sample) => number): string => median(samples.map(f)).toFixed(1);
  const all = samples.map((s) => s.mbps.toFixed(0)).join('/');
  console.log(
    `${name.padEnd(34)} ${pick((s) => s.mbps).padStart(5)} MB/s (runs ${all})  cores ${pick((s) => s.cores)}  max loop delay ${pick((s) => s.maxLoopDelayMs)} ms`,
  );
}

console.log(`${totalMiB} MiB of random bytes, ${availableParallelism()} cores, ${reps} interleaved runs each, median`);
const file = join(tmpdir(), `bench-gzip-${process.pid}`);
writeFileSync(file, random);
try {
  for (const level of [6, 1]) {
    const configs: Array<[string, () => Sample | Promise<Sample>]> = [
      [`zlib createGzip, one stream`, () => run(random, () => createGzip({ level }))],
      [`GNU gzip -${level}`, () => gnuGzip(file, level)],
      ...[1, 2, 4].map((m): [string, () => Promise<Sample>] => [
        `parallel p=2, chunk ${m} MiB`,
        () => run(random, () => createParallelGzip({ level, parallelism: 2, chunkBytes: m * MiB })),
      ]),
      [`parallel p=3, chunk 2 MiB`, () => run(random, () => createParallelGzip({ level, parallelism: 3, chunkBytes: 2 * MiB }))],
    ];
    const samples = new Map<string, Sample[]>();
    for (let rep = 0; rep < reps; rep++) {
      for (const [name, measure] of configs) samples.set(name, [...(samples.get(name) ?? []), await measure()]);
    }
    console.log(`\nlevel ${level}`);
    for (const [name, s] of samples) report(name, s);
  }
} finally {
  rmSync(file, { force: true });
}

const text = compressibleCorpus(32 * MiB);
console.log('\nsize of 32 MiB of JavaScript (compressible) at level 6');
const base = (await run(text, () => createGzip({ level: 6 }))).outBytes;
console.log(`one stream          ${base} bytes`);
for (const kib of [256, 512, 1024, 2048, 4096]) {
  const out = (await run(text, () => createParallelGzip({ level: 6, chunkBytes: kib * 1024 }))).outBytes;
  console.log(`chunk ${String(kib).padStart(4)} KiB      ${out} bytes (+${(((out - base) / base) * 100).toFixed(2)} %)`);
}
