import type { Readable } from 'node:stream';
import type { Manifest } from '@chango/archive';
import { ArchiveReader, type ArchiveEntry } from './archive-reader.js';
import { asError, quoteName, RestoreError } from './errors.js';
import { planEntry, type EntryPlan } from './entry-policy.js';
import { MAX_MANIFEST_BYTES, parseManifest } from './manifest-schema.js';

/**
 * Reads only up to the first entry (manifest.json), validates and returns it,
 * and destroys the source: listing what a backup holds (its date, host,
 * version, record counts) costs a few KiB of download, not the whole archive.
 */
export async function readManifest(source: Readable, options: { identities?: readonly string[] | undefined } = {}): Promise<Manifest> {
  const reader = new ArchiveReader(source, { hashWholeSource: false, identities: options.identities });
  try {
    const first = await reader.entries.next();
    if (first.done) throw noManifest('the archive holds no entries at all');
    return await readManifestEntry(first.value, planEntry(first.value.header));
  } catch (err) {
    reader.fail(asError(err));
    throw reader.failure ?? err;
  } finally {
    reader.close();
  }
}

/**
 * The manifest from the archive's first entry, which `plan` classified.
 * Throws MANIFEST_MISSING when the first entry is something else, too large,
 * or not a valid manifest. Reads at most MAX_MANIFEST_BYTES into memory.
 */
export async function readManifestEntry(entry: ArchiveEntry, plan: EntryPlan): Promise<Manifest> {
  if (plan.kind !== 'manifest') {
    const found = plan.kind === 'outside' ? quoteName(plan.path) : `${quoteName(entry.header.name)} (a ${plan.kind === 'directory' ? 'folder' : 'store file'})`;
    throw noManifest(`its first entry is ${found}, not manifest.json`);
  }
  const size = entry.header.size ?? 0;
  if (size > MAX_MANIFEST_BYTES) {
    throw noManifest(`its manifest.json is ${size} bytes, more than the ${MAX_MANIFEST_BYTES} any real backup needs`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of entry) chunks.push(chunk);
  return parseManifest(Buffer.concat(chunks));
}

/** MANIFEST_MISSING: the archive does not start with a usable manifest.json. */
export function noManifest(why: string): RestoreError {
  return new RestoreError(
    'MANIFEST_MISSING',
    `this is not a chango-backup archive: ${why}. Every backup starts with its manifest.json; check that the right object was downloaded, or use another backup.`,
  );
}
