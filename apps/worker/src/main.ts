#!/usr/bin/env node
import { ControlPlaneState, isStateError } from '@chango/state';
import { createLogger } from '@chango/telemetry';
import { readWorkerConfig } from './config.js';

/**
 * The master-host worker: the one process that holds kms/, iam/ and metadata/
 * open. A start-up it cannot make safely (no, short or wrong root secret;
 * stores held by another process) ends it at once with one line on stderr and
 * exit status 1, so systemd and operators see why.
 */
async function main(): Promise<void> {
  const log = createLogger('chango-worker');
  const config = readWorkerConfig();
  const state = await ControlPlaneState.open({ dataDir: config.dataDir, rootSecret: config.rootSecret, create: true });
  log.info({ dataDir: config.dataDir, activeKek: state.kms.activeKek }, 'worker ready: control-plane state open');

  const keepAlive = setInterval(() => undefined, 60_000);
  const stop = async (signal: string) => {
    log.info({ signal }, 'worker stopping');
    clearInterval(keepAlive);
    await state.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  const message = isStateError(err) ? err.message : err instanceof Error ? err.stack ?? err.message : String(err);
  process.stderr.write(`chango-worker: cannot start: ${message}\n`);
  process.exit(1);
});
