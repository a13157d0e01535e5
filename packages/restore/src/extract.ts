import type { Readable } from 'node:stream';
import type { Manifest, ManifestFile } from '@chango/archive';
import { STORE_NAMES } from '@chango/state';
import { ArchiveReader, type ArchiveDigest } from './archive-reader.js';
import { asError, quoteName, RestoreError } from './errors.js';
import { outsideEntryError, planEntry } from './entry-policy.js';
import { noManifest, readManifestEntry } from './read-manifest.js';
import { TargetTree } from './target-tree.js';

export interface ExtractReport {
  manifest: Manifest;
  /** Hex SHA-256 of the whole compressed archive as read. */
  sha256: string;
  /** Length of the compressed archive. */
  bytes: number;
  /** Store files written (manifest.json is not one: it is returned, not written). */
  files: number;
}

export interface ExtractOptions {
  /** The archive's SHA-256 as recorded at backup time (the `.sha256` sidecar); hex, any case. */
  expectedSha256?: string;
  /** age identities that open an archive encrypted to offline recipients (see ArchiveReader). */
  identities?: readonly string[] | undefined;
}

/** How many missing files a message names before "and N more". */
const NAMES_SHOWN = 5;

/**
 * Extracts a .tar.gz stream into `targetDir` (must not exist or be empty;
 * created 0700), refusing unsafe entries before writing anything for them,
 * writing files 0600 / dirs 0700 (never trusting modes, owners or mtimes from
 * the archive), hashing each file while writing and checking it against the
 * manifest, then checking every manifest file was present. manifest.json itself
 * is returned in the report, not written: the target holds only the stores.
 *
 * Computes the SHA-256 of the whole compressed stream; if `expectedSha256` is
 * given and differs, throws ARCHIVE_CHECKSUM_MISMATCH after reading everything.
 * That check wins over any other failure: when the download is not the
 * archive the sidecar describes, that is the cause, and the gzip or manifest
 * error it led to is only a symptom (the message names it too). To be able to
 * say so, a failed extraction with an expected checksum reads the rest of the
 * source, hashing it only.
 *
 * Likewise, a file whose bytes differ from the manifest is reported only once
 * the rest of the archive has been decoded (writing nothing more): a damaged
 * byte shows there first when the file ends before its gzip member does, and
 * the member's CRC check, failing later, names the real cause (ARCHIVE_CORRUPT).
 *
 * On any error, removes what it wrote under targetDir and rethrows. The source
 * is always consumed or destroyed.
 */
export async function extractVerified(source: Readable, targetDir: string, options: ExtractOptions = {}): Promise<ExtractReport> {
  let tree: TargetTree;
  let expected: string | undefined;
  try {
    expected = options.expectedSha256 === undefined ? undefined : normalizeSha256(options.expectedSha256);
    tree = await TargetTree.prepare(targetDir);
  } catch (err) {
    source.destroy();
    throw err;
  }

  const reader = new ArchiveReader(source, { hashWholeSource: expected !== undefined, identities: options.identities });
  let outcome: { manifest: Manifest; files: number } | null = null;
  try {
    outcome = await writeEntries(reader, tree);
  } catch (err) {
    reader.fail(asError(err));
  }
  const digest = await reader.digest;

  let error = reader.failure;
  if (expected !== undefined && digest !== null && digest.sha256 !== expected) error = checksumMismatch(expected, digest, error);
  if (error === null && (outcome === null || digest === null)) error = new Error('archive extraction ended without a result');
  try {
    if (error !== null) throw error;
    await tree.syncDirs();
  } catch (err) {
    await tree.removeWritten().catch(() => undefined);
    throw err;
  }
  const done = outcome as { manifest: Manifest; files: number };
  const { sha256, bytes } = digest as ArchiveDigest;
  return { manifest: done.manifest, sha256, bytes, files: done.files };
}

/** Reads every entry: the manifest first, then folders and files checked against it. */
async function writeEntries(reader: ArchiveReader, tree: TargetTree): Promise<{ manifest: Manifest; files: number }> {
  const first = await reader.entries.next();
  if (first.done) throw noManifest('the archive holds no entries at all');
  const manifest = await readManifestEntry(first.value, planEntry(first.value.header));

  const expectedFiles = new Map<string, ManifestFile>();
  for (const store of STORE_NAMES) for (const file of manifest.stores[store].files) expectedFiles.set(file.path, file);
  const writtenFiles = new Set<string>();
  const seenDirs = new Set<string>();
  /** A file whose bytes differ from the manifest: reported once the rest of the archive has been decoded. */
  let contentMismatch: RestoreError | null = null;

  for (let next = await reader.entries.next(); !next.done; next = await reader.entries.next()) {
    const entry = next.value;
    if (contentMismatch) {
      // Decode only, write nothing: if gzip's CRC check then fails, the cause is damage, not a wrong manifest.
      for await (const _chunk of entry) void _chunk;
      continue;
    }
    const plan = planEntry(entry.header);
    switch (plan.kind) {
      case 'outside':
        throw outsideEntryError(plan.path);
      case 'manifest':
        throw duplicate('manifest.json');
      case 'directory':
        if (seenDirs.has(plan.path)) throw duplicate(`${plan.path}/`);
        seenDirs.add(plan.path);
        await tree.ensureDir(plan.path);
        break;
      case 'file': {
        const listed = expectedFiles.get(plan.path);
        if (writtenFiles.has(plan.path)) throw duplicate(plan.path);
        if (!listed) {
          throw mismatch(`the archive holds ${quoteName(plan.path)}, which its manifest.json does not list`);
        }
        // Refused from the header, before a byte is written.
        if (entry.header.size !== listed.size) {
          throw mismatch(`${quoteName(plan.path)} is ${entry.header.size} bytes in the archive, but its manifest.json says ${listed.size}`);
        }
        const written = await tree.writeFile(plan.path, entry);
        writtenFiles.add(plan.path);
        if (written.size !== listed.size || written.sha256 !== listed.sha256) {
          // A damaged byte shows here first when the file ends before its gzip member, whose CRC would
          // tell the real cause; so the mismatch waits for the end of the archive (see above).
          contentMismatch = mismatch(
            `${quoteName(plan.path)} has SHA-256 ${written.sha256} (${written.size} bytes), but its manifest.json says ${listed.sha256} (${listed.size} bytes)`,
          );
        }
        break;
      }
    }
  }

  if (contentMismatch) throw contentMismatch;
  const missing = [...expectedFiles.keys()].filter((path) => !writtenFiles.has(path));
  if (missing.length > 0) {
    const more = missing.length > NAMES_SHOWN ? ` and ${missing.length - NAMES_SHOWN} more` : '';
    throw mismatch(`its manifest.json lists ${missing.slice(0, NAMES_SHOWN).map(quoteName).join(', ')}${more}, missing from the archive`);
  }
  // A store without files still needs its folder: the swap puts each store folder in place.
  const absent = STORE_NAMES.filter((store) => !tree.hasDir(store));
  if (absent.length > 0) throw mismatch(`the archive has no ${absent.map((s) => `${s}/`).join(', ')} store folder`);
  return { manifest, files: writtenFiles.size };
}

function mismatch(what: string): RestoreError {
  return new RestoreError(
    'MANIFEST_MISMATCH',
    `the archive does not match its manifest: ${what}. The backup is incomplete or was altered; nothing of it is kept — use another backup.`,
  );
}

function duplicate(name: string): RestoreError {
  return mismatch(`the archive holds ${quoteName(name)} twice`);
}

function normalizeSha256(value: string): string {
  const trimmed = value.trim();
  if (!/^[0-9a-fA-F]{64}$/u.test(trimmed)) {
    throw new RestoreError(
      'ARCHIVE_CHECKSUM_MISMATCH',
      `the expected SHA-256 ${quoteName(trimmed.slice(0, 80))} is not 64 hex digits: the .sha256 sidecar is damaged or is not a checksum; download it again`,
    );
  }
  return trimmed.toLowerCase();
}

function checksumMismatch(expected: string, digest: ArchiveDigest, symptom: Error | null): RestoreError {
  const also = symptom ? ` Reading it also failed: ${symptom.message}` : '';
  return new RestoreError(
    'ARCHIVE_CHECKSUM_MISMATCH',
    `the archive's SHA-256 is ${digest.sha256} (${digest.bytes} bytes read), but ${expected} was expected: ` +
      'the download is damaged or incomplete, or the .sha256 sidecar belongs to another archive. Nothing was restored; download both again.' +
      also,
    symptom ? { cause: symptom } : undefined,
  );
}
