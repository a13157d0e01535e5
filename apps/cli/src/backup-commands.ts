import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseSidecar, type BackupObject } from '@chango/contracts';
import type { Manifest } from '@chango/archive';
import { drill, readManifest, resolveOwner, restoreInto, type RestoreReport } from '@chango/restore';
import { loadIdentityFile } from '@chango/security';
import { isStateError, loadRootSecret } from '@chango/state';
import { placeFromFlags, type BackupPlace, type PlaceFlags } from './backup-place.js';
import { addS3Options, CliError } from './s3-options.js';

interface SourceFlags extends PlaceFlags {
  key?: string;
  latest?: boolean;
  file?: string;
  sha256?: string;
  json?: boolean;
  identity?: string;
}

/** An archive to read, with the checksum it must have (from the sidecar, or given), and where it came from. */
interface ArchiveSource {
  stream: Readable;
  expectedSha256: string | null;
  origin: string;
  /** age identities for an archive encrypted to offline recipients (--identity or CHANGO_AGE_IDENTITY_FILE); empty when none was given. */
  identities: string[];
}

/** Where the age identity file is named when --identity is not given. */
const IDENTITY_FILE_VARIABLE = 'CHANGO_AGE_IDENTITY_FILE';

/**
 * `list`, `inspect`, `restore`, `verify`: the commands that work straight
 * against S3 and disk, for a fresh master where nothing else runs.
 */
export function registerBackupCommands(program: Command): void {
  addPlaceOptions(program.command('list'))
    .description('list the backups at the destination, newest first, a page at a time as they are read (memory and time per page do not grow with the number of backups)')
    .option('--limit <n>', 'at most this many backups (default: all)', parseCount)
    .option('--latest', 'only the newest complete backup (what restore --latest takes)')
    .option('--json', 'print JSON ({bucket, prefix, objects} or {dir, objects}), streamed')
    .action(async (flags: PlaceFlags & { json?: boolean; limit?: number; latest?: boolean }) => {
      const place = placeFromFlags(flags);
      const out = flags.json ? new JsonListing(place) : new TableListing(place);
      if (flags.latest) {
        const newest = await place.newestComplete();
        out.add(newest ? [newest] : []);
      } else {
        let left = flags.limit ?? Infinity;
        let cursor: string | undefined;
        while (left > 0) {
          const page = await place.page({ limit: Math.min(LIST_PAGE, left), before: cursor });
          out.add(page.objects);
          left -= page.objects.length;
          if (page.next === null) break;
          cursor = page.next;
        }
      }
      out.end();
    });

  addSourceOptions(addPlaceOptions(program.command('inspect')), true)
    .description("print a backup's manifest (reads only the archive's first entry)")
    .option('--json', 'print the manifest as JSON')
    .action(async (flags: SourceFlags) => {
      const source = await openSource(flags, { allowIncomplete: true });
      const manifest = await readManifest(source.stream, { identities: source.identities });
      console.log(flags.json ? JSON.stringify(manifest, null, 2) : formatManifest(source.origin, manifest));
    });

  addSourceOptions(addPlaceOptions(program.command('restore')), true)
    .description('restore a backup into a data dir: download, check the checksum and every file, swap the stores in only when all checked')
    .requiredOption('--data-dir <dir>', 'the master data dir to restore into (e.g. /var/lib/chango); stores already there are moved aside, not deleted')
    .option('--owner <user:group>', 'chown the restored stores, like the manual procedure (e.g. chango:chango)')
    .option('--json', 'print the report as JSON')
    .action(async (flags: SourceFlags & { dataDir: string; owner?: string }) => {
      const rootSecret = optionalRootSecret();
      const owner = flags.owner ? await resolveOwner(flags.owner) : undefined;
      const source = await openSource(flags, { allowIncomplete: false });
      const report = await restoreInto(flags.dataDir, source.stream, {
        ...(source.expectedSha256 ? { expectedSha256: source.expectedSha256 } : {}),
        identities: source.identities,
        ...(rootSecret ? { rootSecret } : {}),
        ...(owner ? { owner } : {}),
      });
      console.log(flags.json ? JSON.stringify(report, null, 2) : formatRestore(source, report, rootSecret !== undefined));
    });

  addSourceOptions(addPlaceOptions(program.command('verify')), false)
    .description('restore drill: restore a backup into a temporary folder, open it with the root secret, compare record counts with the manifest')
    .option('--work-dir <dir>', 'where the temporary restore goes (removed afterwards)', tmpdir())
    .option('--json', 'print the report as JSON')
    .action(async (flags: SourceFlags & { workDir: string }) => {
      const rootSecret = loadRootSecret();
      const source = await openSource(flags, { allowIncomplete: false });
      const report = await drill(source.stream, flags.workDir, rootSecret, { ...(source.expectedSha256 ? { expectedSha256: source.expectedSha256 } : {}), identities: source.identities });
      if (flags.json) {
        console.log(JSON.stringify({ ok: true, origin: source.origin, ...report }, null, 2));
      } else {
        const counts = report.storeCheck.records;
        console.log(
          [
            `verified ${source.origin}: it restores.`,
            `  archive sha256 ${report.sha256} (${report.bytes} bytes)${source.expectedSha256 ? ', equal to the sidecar' : ''}`,
            `  every file matched the manifest; the stores opened with the root secret; ${report.storeCheck.keks} KEK(s) and ${report.storeCheck.secretsDecrypted} secret field(s) decrypted`,
            `  records kms=${counts.kms} iam=${counts.iam} metadata=${counts.metadata}, equal to the manifest (${report.durationMs} ms)`,
            ...report.removedStale.map((path) => `  removed ${path}, left by an earlier drill that did not finish`),
          ].join('\n'),
        );
      }
    });
}

/** The S3 flags, or --dir for a directory copy target. */
function addPlaceOptions(command: Command): Command {
  return addS3Options(command).option('--dir <path>', 'read the backups of a directory copy target (its YYYY-MM folders) instead of S3; no S3 setting is needed');
}

function addSourceOptions(command: Command, allowFile: boolean): Command {
  command
    .option('--key <key>', 'object key of the backup (see `chango-backup list`)')
    .option('--latest', 'the newest complete backup at the destination')
    .option('--identity <file>', `the age identity file (AGE-SECRET-KEY-1…, as age-keygen writes it) that opens an archive encrypted to offline recipients (.tar.gz.age); default: the file ${IDENTITY_FILE_VARIABLE} names. The key itself is never a flag`);
  if (allowFile) {
    command
      .option('--file <path>', 'a downloaded .tar.gz (or .tar.gz.age) instead of S3 (its checksum is checked against <file>.sha256 when present)')
      .addOption(new Option('--sha256 <hex>', 'the checksum the archive must have (for --file without a .sha256 beside it)'));
  }
  return command;
}

async function openSource(flags: SourceFlags, { allowIncomplete }: { allowIncomplete: boolean }): Promise<ArchiveSource> {
  const chosen = [flags.key !== undefined, flags.latest === true, flags.file !== undefined].filter(Boolean).length;
  if (chosen !== 1) throw new CliError('say which backup: exactly one of --key KEY, --latest or --file FILE');
  if (flags.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(flags.sha256)) throw new CliError('--sha256 must be 64 lowercase hex digits');
  const identities = identitiesFromFlags(flags);

  if (flags.file !== undefined) {
    if (!existsSync(flags.file)) throw new CliError(`--file ${flags.file} does not exist`);
    const sidecarPath = `${flags.file}.sha256`;
    let expected = flags.sha256 ?? null;
    if (existsSync(sidecarPath)) {
      const fromSidecar = parseSidecar(readFileSync(sidecarPath, 'utf8'));
      if (!fromSidecar) throw new CliError(`${sidecarPath} is not a sha256sum line: it cannot vouch for the archive`);
      if (expected && expected !== fromSidecar) throw new CliError(`--sha256 ${expected} disagrees with ${sidecarPath} (${fromSidecar})`);
      expected = fromSidecar;
    }
    if (!expected) process.stderr.write(`chango-backup: warning: no ${sidecarPath} and no --sha256: the archive's checksum cannot be checked (every file is still checked against the manifest)\n`);
    return { stream: createReadStream(flags.file), expectedSha256: expected, origin: flags.file, identities };
  }

  const place = placeFromFlags(flags);
  let key = flags.key;
  if (flags.latest) {
    const newest = await place.newestComplete();
    if (!newest) throw new CliError(`no complete backup in ${place.where}`);
    key = newest.key;
  }
  if (place.isEncrypted(key as string) && identities.length === 0) {
    throw new CliError(`${key as string} in ${place.where} is encrypted to offline age recipients: give the identity file that opens it with --identity FILE (or name it in ${IDENTITY_FILE_VARIABLE}); nothing was read or written`);
  }
  const archive = await place.open(key as string);
  const { origin, expected } = archive;
  // inspect reads only the manifest, and may look at an archive that never committed.
  if ('problem' in expected && !(allowIncomplete && !archive.sidecarSha256)) {
    archive.stream.destroy();
    throw new CliError(`${origin}: ${expected.problem}; nothing was read from it`);
  }
  if (flags.sha256 && archive.sidecarSha256 && flags.sha256 !== archive.sidecarSha256) {
    archive.stream.destroy();
    throw new CliError(`--sha256 ${flags.sha256} disagrees with the sidecar of ${origin} (${archive.sidecarSha256})`);
  }
  return { stream: archive.stream, expectedSha256: flags.sha256 ?? ('sha256' in expected ? expected.sha256 : null), origin, identities };
}

/** The identities of --identity FILE, else of the file CHANGO_AGE_IDENTITY_FILE names; none when neither is given. */
function identitiesFromFlags(flags: SourceFlags): string[] {
  const path = flags.identity ?? process.env[IDENTITY_FILE_VARIABLE];
  if (!path) return [];
  try {
    return loadIdentityFile(path);
  } catch (err) {
    throw new CliError(`${flags.identity ? '--identity' : IDENTITY_FILE_VARIABLE}: ${(err as Error).message}`);
  }
}

/** The root secret if one is configured; restore works without it (then the KEKs are not checked). */
function optionalRootSecret(): Buffer | undefined {
  try {
    return loadRootSecret();
  } catch (err) {
    if (isStateError(err, 'ROOT_SECRET_MISSING')) return undefined;
    throw err;
  }
}

/** Backups asked for per request while listing: one S3 listing request or two each. */
const LIST_PAGE = 100;

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number of 1 or more');
  return n;
}

/** The listing as a table, printed page by page: fixed columns, so rows of later pages line up with the first. */
class TableListing {
  private rows = 0;
  private keyWidth = 0;
  constructor(private readonly place: BackupPlace) {}

  add(objects: readonly BackupObject[]): void {
    if (objects.length === 0) return;
    if (this.rows === 0) {
      this.keyWidth = Math.max(3, ...objects.map((o) => o.key.length));
      console.log(this.line(['KEY', 'BYTES', 'LAST MODIFIED', 'STATE', 'RESTORE DRILL']));
    }
    for (const o of objects) {
      console.log(this.line([o.key, String(o.size), o.lastModified, o.complete ? 'complete' : 'INCOMPLETE', drillCell(o)]));
    }
    this.rows += objects.length;
  }

  end(): void {
    if (this.rows === 0) console.log(`no backups in ${this.place.where}`);
  }

  private line(cells: string[]): string {
    const widths = [this.keyWidth, 12, 24, 10];
    return cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  }
}

/** What the listing says of a backup's last drill: restored, only its bytes checked (encrypted, no identity on the worker), or failed. */
function drillCell(object: BackupObject): string {
  const { verify } = object;
  if (!verify) return 'not verified';
  if (!verify.ok) return `DRILL FAILED ${verify.verifiedAt}`;
  return verify.kind === 'checksum' ? `bytes checked ${verify.verifiedAt}` : `verified ${verify.verifiedAt}`;
}

/** The listing as one JSON document ({bucket, prefix, objects}), written as pages arrive. */
class JsonListing {
  private count = 0;
  constructor(place: BackupPlace) {
    const header = Object.entries(place.listingHeader).map(([name, value]) => `${JSON.stringify(name)}:${JSON.stringify(value)},`).join('');
    process.stdout.write(`{${header}"objects":[`);
  }

  add(objects: readonly BackupObject[]): void {
    for (const object of objects) {
      process.stdout.write(`${this.count === 0 ? '\n' : ',\n'}${JSON.stringify(object)}`);
      this.count += 1;
    }
  }

  end(): void {
    process.stdout.write('\n]}\n');
  }
}

function formatManifest(origin: string, manifest: Manifest): string {
  const lines = [
    `${origin}`,
    `  backup id   ${manifest.backupId}`,
    `  taken at    ${manifest.timestamp} on ${manifest.hostname} (chango ${manifest.chango.version})`,
  ];
  for (const [name, store] of Object.entries(manifest.stores)) {
    const bytes = store.files.reduce((sum, f) => sum + f.size, 0);
    lines.push(`  ${name.padEnd(9)}   ${store.records} records, ${store.files.length} files, ${bytes} bytes`);
    for (const file of store.files) lines.push(`      ${file.path}  ${file.size}  sha256:${file.sha256}`);
  }
  return lines.join('\n');
}

function formatRestore(source: ArchiveSource, report: RestoreReport, secretChecked: boolean): string {
  return [
    `restored ${source.origin} into ${report.dataDir}`,
    `  archive sha256 ${report.sha256}${source.expectedSha256 ? ' (equal to the sidecar)' : ' (not checked: no sidecar)'}; ${report.files} files checked against the manifest`,
    report.storeCheck
      ? `  the root secret opens it: ${report.storeCheck.keks} KEK(s), ${report.storeCheck.secretsDecrypted} secret field(s) decrypted; records kms=${report.storeCheck.records.kms} iam=${report.storeCheck.records.iam} metadata=${report.storeCheck.records.metadata}`
      : secretChecked
        ? ''
        : '  no root secret given (CHANGO_ROOT_SECRET_FILE / CHANGO_ROOT_SECRET): the KEKs were not checked; the master needs the same secret to start',
    report.previousMovedTo ? `  the stores that were there are kept in ${report.previousMovedTo} (remove them once the master runs)` : '',
    report.owner ? `  owner set to ${report.owner}` : '',
    ...report.removedStaging.map((path) => `  removed ${path}, left by an earlier restore that did not finish`),
  ]
    .filter(Boolean)
    .join('\n');
}
