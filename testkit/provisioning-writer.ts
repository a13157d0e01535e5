import { performance } from 'node:perf_hooks';
import { iamWrites, metadataWrites, type ControlPlaneState } from '@chango/state';

export interface ProvisioningWriter {
  /** Transactions committed so far. */
  readonly committed: number;
  /** The slowest commit since the last reset, in ms (what a writer felt). */
  readonly longestCommitMs: number;
  resetLongest(): void;
  stop(): Promise<void>;
}

/**
 * A writer that keeps a cross-store invariant, as the master does: each step
 * provisions a service component (metadata) together with its access key
 * (iam), both naming each other, and every 25 steps rotates the KEK (kms) so
 * new secrets are sealed with a key that exists only from then on.
 */
export function startProvisioningWriter(state: ControlPlaneState): ProvisioningWriter {
  let running = true;
  let committed = 0;
  let longestCommitMs = 0;
  const done = (async () => {
    for (let i = 0; running; i++) {
      const started = performance.now();
      if (i % 25 === 0) await state.rotateKek();
      const createdAt = new Date().toISOString();
      await state.commit((tx) => {
        metadataWrites.putComponent(tx, { id: `svc-${i}`, kind: 'kiok', version: '0.18.3', cluster: 'c1', nodeId: 'nm-1', config: { accessKeyId: `AKSVC${i}` }, createdAt });
        iamWrites.putAccessKey(tx, { id: `AKSVC${i}`, user: `component:svc-${i}`, status: 'active', createdAt }, `secret-${i}`);
      });
      longestCommitMs = Math.max(longestCommitMs, performance.now() - started);
      committed++;
    }
  })();
  return {
    get committed() {
      return committed;
    },
    get longestCommitMs() {
      return longestCommitMs;
    },
    resetLongest: () => (longestCommitMs = 0),
    stop: async () => {
      running = false;
      await done;
    },
  };
}
