/**
 * @chango/archive: a checkpoint of the three stores as a `.tar.gz` stream with
 * `manifest.json` first, gzip compressed in parallel members, plus the hashing
 * pass-through that gives the archive's own SHA-256.
 */
export {
  buildManifest,
  describeCheckpoint,
  manifestOf,
  serializeManifest,
  type Manifest,
  type ManifestFile,
  type ManifestInfo,
  type StoreManifest,
} from './manifest.js';
export {
  createParallelGzip,
  DEFAULT_CHUNK_BYTES,
  ParallelGzip,
  type ParallelGzipOptions,
} from './gzip-members.js';
export { createArchiveStream, type ArchiveStreamOptions } from './archive-stream.js';
export { HashingCounter } from './hashing.js';
export { ReadBufferPool } from './read-buffers.js';
