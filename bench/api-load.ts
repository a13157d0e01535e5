/**
 * A load generator in a process of its own: `total` calls of one api route,
 * `concurrency` at a time over keep-alive connections, after a warm-up that is
 * not timed; prints {p50, p99, statuses} as JSON. Apart from the benchmark
 * process, whose own garbage collections (it keeps every answer, for the
 * secret checks) would otherwise show up as api latency.
 *
 *   node --import tsx bench/api-load.ts <url> <method> <total> <concurrency>   (token in API_LOAD_TOKEN)
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { percentile } from './percentile.js';

/** Calls made first and not timed: opening the connections and the api's code warming up are not what a steady reader sees. */
const WARM_UP_CALLS = 64;

const [url, method = 'GET', totalArg = '1000', concurrencyArg = '16'] = process.argv.slice(2);
const total = Number(totalArg);
const concurrency = Number(concurrencyArg);
const token = process.env.API_LOAD_TOKEN ?? '';
if (!url || !Number.isInteger(total) || !Number.isInteger(concurrency)) throw new Error('usage: api-load.ts <url> <method> <total> <concurrency>');
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });

function call(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url!, { method, agent, headers: { authorization: `Bearer ${token}` }, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end();
  });
}

async function run(calls: number, time: boolean): Promise<{ latencies: number[]; statuses: Record<number, number> }> {
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < calls) {
        const started = performance.now();
        const status = await call();
        if (time) latencies.push(performance.now() - started);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  return { latencies, statuses };
}

await run(WARM_UP_CALLS, false);
const { latencies, statuses } = await run(total, true);
agent.destroy();
console.log(JSON.stringify({ p50: Number(percentile(latencies, 50).toFixed(1)), p99: Number(percentile(latencies, 99).toFixed(1)), statuses }));
