import type { ControlPlaneState } from '@chango/state';
import type { Logger } from '@chango/telemetry';
import type { WorkerConfig } from './config.js';
import type { JobGuard } from './job-guard.js';
import type { LeaderLease } from './leader-lease.js';
import type { RunLedger } from './run-ledger.js';

/** What every long job of the backup queue (backup, drill, copy) runs with: the state, the settings, the lease, the ledger, the watchdog. */
export interface JobContext {
  state: ControlPlaneState;
  config: WorkerConfig;
  log: Logger;
  /** Confirmed before anything a job does at a destination that only the leader may do (commit, delete). */
  lease: LeaderLease;
  ledger: RunLedger;
  guard: JobGuard;
}
