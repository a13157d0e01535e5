import { z } from 'zod';
import { isAgeRecipient } from '@chango/security';
import { looksLikeBackupKey } from './backup-key.js';
import { cronProblem } from './cron.js';

/**
 * The backup destination (the spec's `PUT /admin/api/backup/config` body) and
 * its rules. The api validates requests with it and the worker validates again
 * before storing: one schema, so the two can never disagree.
 */

const endpoint = z
  .string()
  .max(2048)
  .refine(isPlainHttpUrl, 'must be an http:// or https:// URL with a host and no path, query or credentials (e.g. http://shannonstore:8080)');

const region = z
  .string()
  .min(1, 'must not be empty (any value, e.g. us-east-1, for non-AWS providers)')
  .max(64)
  .regex(/^[a-z0-9-]+$/, 'must be lowercase letters, digits and hyphens (e.g. us-east-1)');

const bucket = z
  .string()
  .regex(
    /^(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    'must be an S3 bucket name: 3–63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit',
  );

const prefix = z
  .string()
  .max(512)
  .refine((p) => p === '' || (p.endsWith('/') && !p.startsWith('/')), "must be empty or end with '/' and not start with it (e.g. 'prod/')")
  .refine((p) => !/[\u0000-\u001f\u007f\\]/.test(p) && !p.split('/').includes('..'), "must not contain control characters, backslashes or '..'");

// SigV4 puts the access key in a '/'-separated credential scope: a key with a '/' can never sign a request.
const accessKey = z.string().min(1, 'must not be empty').max(128).regex(/^[^\s/]+$/, "must not contain spaces or '/'");
const secretKey = z.string().min(1, 'must not be empty').max(256);

/** Standard 5-field cron, or 6 fields with leading seconds; parsed by the same library BullMQ schedules with. */
export const cronSchedule = z
  .string()
  .max(256)
  .superRefine((expression, ctx) => {
    const problem = cronProblem(expression);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** An IANA time zone the schedule is read in (e.g. Europe/Berlin); UTC by default. */
const timezone = z
  .string()
  .max(64)
  .refine(isTimeZone, 'must be an IANA time zone name such as UTC or Europe/Berlin');

export const SSE_MODES = ['AES256', 'aws:kms', 'none'] as const;

/**
 * The KMS key SSE-KMS encrypts with (`x-amz-server-side-encryption-aws-kms-key-id`):
 * a key id, key ARN, alias name or alias ARN on AWS; a key name of the KMS
 * behind other providers (Ceph RGW: Vault, Barbican). Not a secret — it names
 * a key, it is not one — so it is stored and shown as it is. Left out: the
 * provider's default key.
 */
const sseKmsKeyId = z
  .string()
  .min(1, 'must not be empty (leave it out for the default KMS key)')
  .max(2048)
  .regex(/^[A-Za-z0-9:/_.+=@-]+$/, 'must be a KMS key id, key ARN or alias (letters, digits and : / _ . + = @ -), e.g. alias/chango-backups');

/** sseKmsKeyId goes with sse aws:kms only: with another mode it would be ignored, so it is refused. */
function kmsKeyWithKms(value: { sse?: (typeof SSE_MODES)[number] | undefined; sseKmsKeyId?: string | null | undefined }, ctx: z.RefinementCtx): void {
  if (value.sseKmsKeyId != null && value.sse !== 'aws:kms') {
    ctx.addIssue({ code: 'custom', path: ['sseKmsKeyId'], message: `is only used with sse "aws:kms" (sse is ${JSON.stringify(value.sse ?? 'AES256')}): set sse to "aws:kms", or leave sseKmsKeyId out` });
  }
}

const retention = z
  .strictObject({
    keepLast: z.number().int().min(1).max(100_000).optional(),
    maxAgeDays: z.number().int().min(1).max(36_500).optional(),
    /** Keep every backup: the explicit opt-out of the default (see DEFAULT_RETENTION). */
    keepAll: z.literal(true).optional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.keepAll && (rule.keepLast !== undefined || rule.maxAgeDays !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['keepAll'], message: 'cannot be combined with keepLast or maxAgeDays: keepAll keeps every backup' });
    }
  });

/** The most offline recipients one destination encrypts to (each adds ~250 bytes of header). */
export const MAX_AGE_RECIPIENTS = 16;

/**
 * Archives encrypted to offline age recipients (X25519 public keys, age1…):
 * only someone holding one of their identities opens them — not the worker,
 * not someone who also learned the root secret. Null: not encrypted.
 */
const encryption = z.strictObject({
  recipients: z
    .array(z.string().max(100).refine(isAgeRecipient, 'must be an age X25519 recipient: age1 and 58 more characters, as `age-keygen -y key.txt` prints it (post-quantum and plugin recipients are not supported)'))
    .min(1, 'must name at least one recipient (or set encryption to null to store archives unencrypted)')
    .max(MAX_AGE_RECIPIENTS, `must name at most ${MAX_AGE_RECIPIENTS} recipients`)
    .refine((list) => new Set(list).size === list.length, 'must not name the same recipient twice'),
});
export type ArchiveEncryption = z.infer<typeof encryption>;

export const ADDRESSING_STYLES = ['path', 'virtual-hosted'] as const;

export const OBJECT_LOCK_MODES = ['GOVERNANCE', 'COMPLIANCE'] as const;
/** The longest Object Lock retention accepted: 100 years (S3 itself allows more; nobody needs it for a backup). */
export const OBJECT_LOCK_MAX_DAYS = 36_500;

/**
 * S3 Object Lock on every archive, sidecar and drill record written: each is
 * retained (WORM) in `mode` for `days` from when it is written. The bucket
 * must have been created with Object Lock enabled (checked when saved).
 * GOVERNANCE can be lifted by a principal with s3:BypassGovernanceRetention;
 * COMPLIANCE by nobody, the root account included, until the date passes.
 */
const objectLock = z.strictObject({
  mode: z.enum(OBJECT_LOCK_MODES),
  days: z.number().int().min(1, 'must be at least 1 day').max(OBJECT_LOCK_MAX_DAYS, `must be at most ${OBJECT_LOCK_MAX_DAYS} days (100 years)`),
});
export type ObjectLock = z.infer<typeof objectLock>;

const sharedFields = {
  endpoint,
  region,
  bucket,
  prefix: prefix.optional(),
  accessKey,
  schedule: cronSchedule.nullable().optional(),
  timezone: timezone.optional(),
  sse: z.enum(SSE_MODES).optional(),
  /** null or left out: the provider's default key (with sse aws:kms only). */
  sseKmsKeyId: sseKmsKeyId.nullable().optional(),
  retention: retention.nullable().optional(),
  addressing: z.enum(ADDRESSING_STYLES).optional(),
  encryption: encryption.nullable().optional(),
  /** null or left out: no Object Lock. */
  objectLock: objectLock.nullable().optional(),
};

/**
 * Where the second copy goes: an absolute path (an NFS mount, a removable
 * disk), normalized — no '..', '.', '//' or trailing '/' — so what is shown
 * is what is written to.
 */
const directoryPath = z
  .string()
  .max(1024)
  .refine((p) => p.startsWith('/') && p !== '/', "must be an absolute path other than '/' (e.g. /mnt/offline/chango)")
  .refine((p) => !/[\u0000-\u001f\u007f\\]/.test(p), 'must not contain control characters or backslashes')
  .refine((p) => !p.endsWith('/') && !p.split('/').slice(1).some((part) => part === '' || part === '.' || part === '..'), "must be normalized: no '..', '.', '//' or trailing '/'");

/** A second copy at another S3 endpoint or bucket, with its own credentials, SSE and retention. */
const s3CopyFields = {
  type: z.literal('s3'),
  endpoint,
  region,
  bucket,
  prefix: prefix.optional(),
  accessKey,
  sse: z.enum(SSE_MODES).optional(),
  sseKmsKeyId: sseKmsKeyId.nullable().optional(),
  retention: retention.nullable().optional(),
  addressing: z.enum(ADDRESSING_STYLES).optional(),
  /** null or left out: no Object Lock at the copy. */
  objectLock: objectLock.nullable().optional(),
};

/** A second copy in a local directory (archives in YYYY-MM/ folders by their time), with its own retention. */
const directoryCopyFields = {
  type: z.literal('directory'),
  path: directoryPath,
  retention: retention.nullable().optional(),
};

/** The second copy in a PUT body: an S3 copy's `secretKey` may be left out to keep the stored one. */
const copyUpdate = z.discriminatedUnion('type', [z.strictObject({ ...s3CopyFields, secretKey: secretKey.optional() }).superRefine(kmsKeyWithKms), z.strictObject(directoryCopyFields)]);
export type CopyTargetUpdate = z.infer<typeof copyUpdate>;

/** The second copy as stored: every default resolved. */
export const CopyTargetSchema = z.discriminatedUnion('type', [
  z.strictObject({ ...s3CopyFields, prefix, secretKey, sse: z.enum(SSE_MODES), retention: retention.nullable(), addressing: z.enum(ADDRESSING_STYLES) }),
  z.strictObject({ ...directoryCopyFields, retention: retention.nullable() }),
]);
export type CopyTarget = z.infer<typeof CopyTargetSchema>;
export type S3CopyTarget = Extract<CopyTarget, { type: 's3' }>;

/** A PUT body: `secretKey` may be left out to keep the stored one. Unknown fields are refused. */
export const DestinationUpdateSchema = z.strictObject({ ...sharedFields, secretKey: secretKey.optional(), copy: copyUpdate.nullable().optional() }).superRefine(kmsKeyWithKms);
export type DestinationUpdate = z.infer<typeof DestinationUpdateSchema>;

/** An update as it crosses Redis to the worker: both secret keys taken out (they travel sealed, see ControlJobData). */
export type DestinationUpdateWithoutSecrets = Omit<DestinationUpdate, 'secretKey' | 'copy'> & { copy?: DistributiveOmit<CopyTargetUpdate, 'secretKey'> | null | undefined };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Takes the secret keys out of an update: the primary's and the S3 copy's. */
export function withoutSecrets(update: DestinationUpdate): { update: DestinationUpdateWithoutSecrets; secretKey: string | undefined; copySecretKey: string | undefined } {
  const { secretKey, copy, ...rest } = update;
  if (!copy) return { update: { ...rest, copy }, secretKey, copySecretKey: undefined };
  if (copy.type === 'directory') return { update: { ...rest, copy }, secretKey, copySecretKey: undefined };
  const { secretKey: copySecretKey, ...copyRest } = copy;
  return { update: { ...rest, copy: copyRest }, secretKey, copySecretKey };
}

/** The destination as stored (in the metadata store, envelope-encrypted) and used: every default resolved. */
export const BackupDestinationSchema = z.strictObject({
  endpoint,
  region,
  bucket,
  prefix,
  accessKey,
  secretKey,
  schedule: cronSchedule.nullable(),
  // Destinations stored before time zones existed read as UTC.
  timezone: timezone.default('UTC'),
  sse: z.enum(SSE_MODES),
  // Destinations stored before it existed use the provider's default key.
  sseKmsKeyId: sseKmsKeyId.nullable().optional(),
  retention: retention.nullable(),
  addressing: z.enum(ADDRESSING_STYLES),
  // Destinations stored before encryption existed read as unencrypted.
  encryption: encryption.nullable().default(null),
  // Destinations stored before second copies existed have none.
  copy: CopyTargetSchema.nullable().default(null),
  // Destinations stored before Object Lock existed have none: absent reads as off (see objectLockOf).
  objectLock: objectLock.nullable().optional(),
});
export type BackupDestination = z.infer<typeof BackupDestinationSchema>;

/** Where a drill downloads the backup from: the primary destination, or the second copy. */
export const DRILL_SOURCES = ['primary', 'copy'] as const;
export type DrillSource = (typeof DRILL_SOURCES)[number];

/** `POST /admin/api/backup/verify` body: which backup to drill (none: the newest complete one), and from where (primary by default). */
export const VerifyRequestSchema = z.strictObject({
  from: z.enum(DRILL_SOURCES).optional(),
  key: z
    .string()
    .max(1024)
    .refine(looksLikeBackupKey, 'must be the key of a backup (<prefix>chango-<YYYYMMDDTHHMMSSZ>-<uuid>.tar.gz, or .tar.gz.age when encrypted), as listed by GET /admin/api/backup/objects')
    .optional(),
});

/** The most backups one page of `GET /admin/api/backup/objects` shows. */
export const OBJECTS_PAGE_MAX = 500;

/** A page of the backups listing: how many, and where (the `nextCursor` of the page before; none: the newest). */
export const ObjectsPageSchema = z.strictObject({
  limit: z.number().int().min(1).max(OBJECTS_PAGE_MAX),
  cursor: z
    .string()
    .max(1024)
    .refine(looksLikeBackupKey, 'must be the nextCursor of an earlier page (the key of a backup)')
    .optional(),
});
export type ObjectsPage = z.infer<typeof ObjectsPageSchema>;

/** Which edit of the destination a store holds: every save bumps it, and workers adopt a higher one (see destination-replica.ts). */
export interface DestinationRevision {
  revision: number;
  updatedAt: string;
  /** Node id of the worker that saved it. */
  updatedBy: string;
}

/** The second copy as it may leave the worker: an S3 copy without its secret's value. */
export type PublicCopyTarget = Extract<CopyTarget, { type: 'directory' }> | (Omit<S3CopyTarget, 'secretKey'> & { secretKeySet: true });

/** What may leave the worker: the destination without the secrets' values (and Object Lock always spelled out, null for off). */
export type PublicDestination = Omit<BackupDestination, 'secretKey' | 'copy' | 'objectLock'> & { copy: PublicCopyTarget | null; objectLock: ObjectLock | null; secretKeySet: true };

export function toPublicDestination(destination: BackupDestination): PublicDestination {
  const { secretKey: _secret, copy, ...rest } = destination;
  return { ...rest, copy: copy ? toPublicCopyTarget(copy) : null, objectLock: objectLockOf(destination), secretKeySet: true };
}

function toPublicCopyTarget(copy: CopyTarget): PublicCopyTarget {
  if (copy.type === 'directory') return copy;
  const { secretKey: _secret, ...rest } = copy;
  return { ...rest, secretKeySet: true };
}

/** The destination's Object Lock, or null when it has none (never set, or stored before the field existed). */
export function objectLockOf(destination: Pick<BackupDestination, 'objectLock'>): ObjectLock | null {
  return destination.objectLock ?? null;
}

/**
 * A copy target as a URL — `<endpoint>/<bucket>/<prefix>` for S3,
 * `file://<path>` for a directory — the `destination` of its status and
 * metrics.
 */
export function copyDestinationLabel(copy: CopyTarget | PublicCopyTarget): string {
  return copy.type === 'directory' ? `file://${copy.path}` : `${copy.endpoint.replace(/\/$/, '')}/${copy.bucket}/${copy.prefix}`;
}

/** The second copy an update asks for, resolved: defaults filled, the secret key given or kept. Null when it asks for none. */
export function resolveCopyTarget(update: DestinationUpdateWithoutSecrets['copy'], copySecretKey: string | undefined): CopyTarget | null {
  if (!update) return null;
  if (update.type === 'directory') return CopyTargetSchema.parse({ ...update, retention: update.retention ?? null });
  return CopyTargetSchema.parse({
    ...update,
    prefix: update.prefix ?? '',
    sse: update.sse ?? 'AES256',
    sseKmsKeyId: update.sseKmsKeyId ?? null,
    retention: update.retention ?? null,
    addressing: update.addressing ?? 'path',
    secretKey: copySecretKey,
  });
}

/** Applies an update to what is stored, resolving defaults (the second copy resolved already, see resolveCopyTarget). */
export function resolveDestination(update: DestinationUpdateWithoutSecrets, secretKey: string, copy: CopyTarget | null = null): BackupDestination {
  return BackupDestinationSchema.parse({
    ...update,
    copy,
    prefix: update.prefix ?? '',
    schedule: update.schedule ?? null,
    timezone: update.timezone ?? 'UTC',
    sse: update.sse ?? 'AES256',
    sseKmsKeyId: update.sseKmsKeyId ?? null,
    retention: update.retention ?? null,
    addressing: update.addressing ?? 'path',
    encryption: update.encryption ?? null,
    objectLock: update.objectLock ?? null,
    secretKey,
  });
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

function isPlainHttpUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    url.hostname !== '' &&
    url.username === '' &&
    url.password === '' &&
    (url.pathname === '/' || url.pathname === '') &&
    url.search === '' &&
    url.hash === '' &&
    !value.endsWith('?')
  );
}
