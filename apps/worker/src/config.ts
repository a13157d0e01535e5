import { DEFAULT_DATA_DIR, loadRootSecret } from '@chango/state';

export interface WorkerConfig {
  dataDir: string;
  rootSecret: Buffer;
}

/** Reads the worker's settings from the environment; throws StateError on a missing or short root secret. */
export function readWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  return { dataDir: env.CHANGO_DATA_DIR || DEFAULT_DATA_DIR, rootSecret: loadRootSecret(env) };
}
