/**
 * The design's modes for everything of the control plane's state on disk —
 * the stores, their checkpoints, the archive's entries, what a restore
 * writes, the worker's spool: readable by its owner only.
 */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;
