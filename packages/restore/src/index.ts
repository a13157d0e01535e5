/**
 * @chango/restore: the reading side of a backup archive — manifest, verified
 * extraction that refuses unsafe entries, store checks with the root secret —
 * and the restore into a data dir with an atomic swap that keeps the old
 * stores. No S3 in here: callers hand in a Readable of the .tar.gz.
 */
export { RestoreError, isRestoreError, type RestoreErrorCode } from './errors.js';
export { readManifest } from './read-manifest.js';
export { extractVerified, type ExtractReport, type ExtractOptions } from './extract.js';
export { checkStores, type StoreCheck } from './store-check.js';
export { assertStoresNotInUse } from './stores-in-use.js';
export { resolveOwner, type Owner } from './owner.js';
export { restoreInto, type RestoreOptions, type RestoreReport } from './restore.js';
export { drill, type DrillReport } from './drill.js';
export { isProcessRunning } from './process-liveness.js';
export { planEntry, type EntryPlan } from './entry-policy.js';
export { parseManifest, MAX_MANIFEST_BYTES } from './manifest-schema.js';
export { lockForRestore, RESTORE_LOCK_DIR, STAGING_PREFIX, type RestoreLock } from './restore-lock.js';
