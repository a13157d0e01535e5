export { ControlPlaneState, DEFAULT_DATA_DIR, type OpenStateOptions } from './control-plane-state.js';
export type { CheckpointOptions, CheckpointReport, CheckpointedStore } from './checkpoint.js';
export { StateError, isStateError, type StateErrorCode } from './errors.js';
export { chooseRootSecretSource, loadRootSecret, MIN_ROOT_SECRET_BYTES, type RootSecretEnv, type RootSecretSource } from './root-secret.js';
export { Kms, deriveMasterDek, type Envelope } from './kms.js';
export { iamWrites, IAM_PREFIX, type User, type Group, type Policy, type AccessKey, type StoredAccessKey } from './iam.js';
export {
  metadataWrites,
  METADATA_PREFIX,
  METADATA_KEYS,
  type Component,
  type StoredComponent,
  type ClusterSettings,
  type GatewayTopology,
  type NginxSite,
} from './metadata.js';
export { hashPassword, verifyPassword } from './passwords.js';
export { collectStats, type StateStats } from './stats.js';
export { STORE_NAMES, type StoreName, type PerStore } from './stores.js';
export { LOW_MEMORY_TUNING, RocksStore, type OpenStoreOptions } from './rocks-store.js';
export type { Transaction } from './transaction.js';
export { WriteGate } from './write-gate.js';
export { DIR_MODE, FILE_MODE } from './file-modes.js';
export { BufferGarbage, collectGarbage } from './garbage.js';
