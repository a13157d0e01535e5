import type { Manifest } from '@chango/archive';
import type { StoreName } from '@chango/state';
import { z } from 'zod';
import { RestoreError } from './errors.js';
import { pathProblem } from './entry-policy.js';

/**
 * `manifest.json` as read back from an archive: the same shape the archive
 * writer produces (@chango/archive's Manifest), checked field by field because
 * the bytes come from outside. Every file path must be a plain path inside its
 * own store folder and appear once; record counts and sizes are non-negative
 * integers; checksums are hex SHA-256. Unknown extra fields are dropped, so a
 * later writer may add some without breaking this reader; `format` is what
 * says the layout changed.
 */

/**
 * A manifest lists one line of JSON (~150 bytes) per store file; 32 MiB is
 * over 200 000 files, far past any real state, and bounds what a hostile
 * archive can make us hold in memory.
 */
export const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/u, 'must be a lowercase hex SHA-256 (64 digits)');
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

function storeManifest(store: StoreName) {
  return z.object({
    records: count,
    files: z
      .array(
        z.object({
          path: z.string().superRefine((path, ctx) => {
            const problem = pathProblem(path) ?? (path.startsWith(`${store}/`) ? null : `is not inside the ${store}/ store folder`);
            if (problem) ctx.addIssue({ code: 'custom', message: `path ${JSON.stringify(path)} ${problem}` });
          }),
          size: count,
          sha256: sha256Hex,
        }),
      )
      .superRefine((files, ctx) => {
        const seen = new Set<string>();
        for (const file of files) {
          if (seen.has(file.path)) ctx.addIssue({ code: 'custom', message: `lists ${JSON.stringify(file.path)} twice` });
          seen.add(file.path);
        }
      }),
  });
}

const manifestSchema = z.object({
  format: z.literal(1),
  backupId: z.string().min(1),
  timestamp: z.iso.datetime({ offset: true }),
  hostname: z.string(),
  chango: z.object({ version: z.string() }),
  stores: z.object({ kms: storeManifest('kms'), iam: storeManifest('iam'), metadata: storeManifest('metadata') }),
});

/** How many schema problems a message lists before "and N more". */
const ISSUES_SHOWN = 5;

/** Parses and validates the bytes of `manifest.json`; throws MANIFEST_MISSING saying what is wrong. */
export function parseManifest(bytes: Buffer): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw invalid(`it is not JSON (${(err as Error).message})`);
  }
  const result = manifestSchema.safeParse(json);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}`);
    const more = issues.length > ISSUES_SHOWN ? `, and ${issues.length - ISSUES_SHOWN} more` : '';
    throw invalid(`it does not have the shape of a Chango backup manifest (${issues.slice(0, ISSUES_SHOWN).join('; ')}${more})`);
  }
  const manifest: Manifest = result.data;
  return manifest;
}

function invalid(why: string): RestoreError {
  return new RestoreError(
    'MANIFEST_MISSING',
    `the archive's manifest.json cannot be used: ${why}. Without it the files cannot be checked; this is not a chango-backup archive or it was altered — use another backup.`,
  );
}
