import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { buildManifest, type Manifest } from '@chango/archive';
import { ControlPlaneState, metadataWrites, STORE_NAMES, type GatewayTopology } from '@chango/state';
import { seedState } from '@chango/seed';

/**
 * A control-plane state of a given size on disk, and the checkpoint and manifest the worker would
 * make of it: what the benchmarks measure against (bench/support.ts keeps a seeded state between
 * runs; the measuring itself stays in bench/).
 */

const SEED_STEP_COMPONENTS = 5000;

/** MiB on disk below `paths`; files RocksDB deletes while we look (compaction) are skipped. */
export async function sizeMiB(...paths: string[]): Promise<number> {
  let bytes = 0;
  for (const path of paths) {
    for (const entry of await readdir(path, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      bytes += await stat(join(entry.parentPath, entry.name)).then((s) => s.size, () => 0);
    }
  }
  return bytes / 2 ** 20;
}

export interface SeededState {
  state: ControlPlaneState;
  stateMiB: number;
  components: number;
  seconds: number;
}

/**
 * What the seeded records look like:
 * - `inventory`: many small records (components, users, settings; each step's gateway topology
 *   covers that step's 5000 components only, ≈ 1.2 MiB);
 * - `large-values`: the same, but the gateway topology is one record for the whole inventory, as a
 *   real cluster's is: ≈ 250 B per component, so ≈ 25 MiB at 256 MiB of state and ≈ 100 MiB at 1 GiB.
 */
export type StateShape = 'inventory' | 'large-values';

/**
 * Seeds `dataDir` (200 users, then components in steps) until its stores take
 * at least `targetMiB` on disk, measured after a reopen so the write-ahead log
 * has been flushed into SST files: the state as it rests. Returns it open.
 */
export async function seedUntil(dataDir: string, rootSecret: Buffer, targetMiB: number, shape: StateShape = 'inventory'): Promise<SeededState> {
  const open = () => ControlPlaneState.open({ dataDir, rootSecret, create: true });
  const storeDirs = STORE_NAMES.map((name) => join(dataDir, name));
  const started = performance.now();
  let state = await open();
  await seedState(state, { users: 200, components: 0 });
  let components = 0;
  let stateMiB = 0;
  const gateways: GatewayTopology['gateways'] = [];
  while (stateMiB < targetMiB) {
    await seedState(state, { users: 0, components: SEED_STEP_COMPONENTS });
    components += SEED_STEP_COMPONENTS;
    // Each step writes the topology of its own components; the whole cluster's is their union.
    if (shape === 'large-values') gateways.push(...((await state.metadata.gatewayTopology())?.gateways ?? []));
    await state.close();
    state = await open();
    stateMiB = await sizeMiB(...storeDirs);
  }
  if (shape === 'large-values') {
    // Written once, at the end: rewriting a growing record at every step would fill the stores with its old versions.
    const topology: GatewayTopology = { gateways, updatedAt: new Date().toISOString() };
    await state.commit((tx) => metadataWrites.putGatewayTopology(tx, topology));
    await state.close();
    state = await open();
    stateMiB = await sizeMiB(...storeDirs);
  }
  return { state, stateMiB, components, seconds: (performance.now() - started) / 1000 };
}

/** A checkpoint of the state in `dataDir`, taken into `checkpointDir`, and its manifest, as the worker makes them. */
export async function checkpointWithManifest(dataDir: string, rootSecret: string, checkpointDir: string): Promise<Manifest> {
  const state = await ControlPlaneState.open({ dataDir, rootSecret: Buffer.from(rootSecret) });
  let checkpoint;
  try {
    checkpoint = await state.checkpoint(checkpointDir);
  } finally {
    await state.close();
  }
  return buildManifest(checkpointDir, {
    backupId: '00000000-0000-4000-8000-000000000000',
    timestamp: new Date(),
    hostname: 'bench',
    changoVersion: 'bench',
    records: { kms: checkpoint.stores.kms.records, iam: checkpoint.stores.iam.records, metadata: checkpoint.stores.metadata.records },
  });
}
