import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appliedRetention, BackupDestinationSchema, DestinationUpdateSchema, fieldErrors, resolveDestination, toPublicDestination } from '@chango/contracts';

const valid = {
  endpoint: 'http://shannonstore:8080',
  region: 'us-east-1',
  bucket: 'chango-backups',
  prefix: 'prod/',
  accessKey: 'AKIAEXAMPLE',
  secretKey: 'wJalrXUtnFEMI/K7MDENG',
};

function errorsFor(body: unknown) {
  const parsed = DestinationUpdateSchema.safeParse(body);
  return parsed.success ? [] : fieldErrors(parsed.error);
}

test("the spec's example body is valid", () => {
  assert.deepEqual(errorsFor(valid), []);
  assert.deepEqual(errorsFor({ ...valid, schedule: '0 3 * * *', sse: 'none', retention: { keepLast: 7 } }), []);
  assert.deepEqual(errorsFor({ ...valid, schedule: '*/10 * * * * *' }), [], '6 fields with seconds');
  assert.deepEqual(errorsFor({ ...valid, schedule: '0 3 * * *', timezone: 'Europe/Berlin' }), [], 'an IANA time zone');
});

test('each bad field is named', () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ ...valid, endpoint: 'ftp://x' }, 'endpoint', /http:\/\/ or https:\/\//],
    [{ ...valid, endpoint: 'http://user:pw@host' }, 'endpoint', /no path, query or credentials/],
    [{ ...valid, bucket: 'Bad_Bucket' }, 'bucket', /S3 bucket name/],
    [{ ...valid, prefix: 'prod' }, 'prefix', /end with '\/'/],
    [{ ...valid, prefix: '../x/' }, 'prefix', /'\.\.'/],
    [{ ...valid, region: '' }, 'region', /must not be empty/],
    [{ ...valid, accessKey: 42 }, 'accessKey', /string/],
    [{ ...valid, accessKey: 'AKIA/EXAMPLE' }, 'accessKey', /spaces or '\/'/],
    [{ ...valid, schedule: 'every day' }, 'schedule', /5 fields/],
    [{ ...valid, schedule: '61 * * * *' }, 'schedule', /not a valid cron expression/],
    [{ ...valid, schedule: '0 3 * * * * *' }, 'schedule', /got 7/],
    [{ ...valid, timezone: 'Mars/Olympus_Mons' }, 'timezone', /IANA time zone/],
    [{ ...valid, sse: 'AES128' }, 'sse', /AES256/],
    [{ ...valid, retention: { keepLast: 0 } }, 'retention.keepLast', /1/],
    [{ ...valid, retention: { forever: true } }, 'retention.forever', /not a known field/],
    [{ ...valid, retention: { keepAll: true, keepLast: 5 } }, 'retention.keepAll', /cannot be combined with keepLast/],
    [{ ...valid, retention: { keepAll: false } }, 'retention.keepAll', /true/],
    [{ ...valid, colour: 'blue' }, 'colour', /not a known field/],
    [{ ...valid, objectLock: { mode: 'WORM', days: 30 } }, 'objectLock.mode', /GOVERNANCE|COMPLIANCE/],
    [{ ...valid, objectLock: { mode: 'COMPLIANCE', days: 0 } }, 'objectLock.days', /at least 1 day/],
    [{ ...valid, objectLock: { mode: 'COMPLIANCE', days: 36_501 } }, 'objectLock.days', /at most 36500 days/],
    [{ ...valid, objectLock: { mode: 'COMPLIANCE', days: 1.5 } }, 'objectLock.days', /whole number/],
    [{ ...valid, objectLock: { mode: 'COMPLIANCE', days: '30' } }, 'objectLock.days', /number/],
    [{ ...valid, objectLock: { mode: 'COMPLIANCE' } }, 'objectLock.days', /is required/],
    [{ ...valid, objectLock: { mode: 'COMPLIANCE', days: 30, years: 1 } }, 'objectLock.years', /not a known field/],
    [{ ...valid, objectLock: 'COMPLIANCE' }, 'objectLock', /object/],
  ];
  for (const [body, field, message] of cases) {
    const errors = errorsFor(body);
    const error = errors.find((e) => e.field === field);
    assert.ok(error, `expected an error on ${field}, got ${JSON.stringify(errors)}`);
    assert.match(error.message, message, field);
  }
});

test('encryption names 1 to 16 distinct age X25519 recipients; a bad one is named by its place, and null turns it off', () => {
  const recipient = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
  const other = 'age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg';
  assert.deepEqual(errorsFor({ ...valid, encryption: { recipients: [recipient, other] } }), []);
  assert.deepEqual(errorsFor({ ...valid, encryption: null }), []);
  const cases: [unknown, string, RegExp][] = [
    [{ recipients: [recipient, 'age1notarecipient'] }, 'encryption.recipients.1', /age X25519 recipient: age1 and 58 more characters/],
    [{ recipients: ['AGE-SECRET-KEY-1QQQQ'] }, 'encryption.recipients.0', /age X25519 recipient/],
    [{ recipients: [] }, 'encryption.recipients', /at least one recipient/],
    [{ recipients: [recipient, recipient] }, 'encryption.recipients', /same recipient twice/],
    [{ recipients: Array.from({ length: 17 }, () => recipient) }, 'encryption.recipients', /at most 16/],
    [{ recipients: [recipient], passphrase: 'x' }, 'encryption.passphrase', /not a known field/],
  ];
  for (const [encryption, field, message] of cases) {
    const errors = errorsFor({ ...valid, encryption });
    assert.equal(errors[0]?.field, field, JSON.stringify(errors));
    assert.match(errors[0]?.message ?? '', message);
  }
  const { secretKey, ...update } = valid;
  assert.equal(resolveDestination(update, secretKey).encryption, null, 'not encrypted unless asked');
});

test('sseKmsKeyId names a KMS key, with sse aws:kms only; it is stored and shown (not a secret)', () => {
  assert.deepEqual(errorsFor({ ...valid, sse: 'aws:kms', sseKmsKeyId: 'alias/chango-backups' }), []);
  assert.deepEqual(errorsFor({ ...valid, sse: 'aws:kms', sseKmsKeyId: 'arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' }), []);
  assert.deepEqual(errorsFor({ ...valid, sse: 'aws:kms', sseKmsKeyId: null }), [], 'null: the default key');
  for (const [body, message] of [
    [{ ...valid, sseKmsKeyId: 'alias/x' }, /only used with sse "aws:kms" \(sse is "AES256"\)/],
    [{ ...valid, sse: 'none', sseKmsKeyId: 'alias/x' }, /only used with sse "aws:kms"/],
    [{ ...valid, sse: 'aws:kms', sseKmsKeyId: 'has space' }, /KMS key id, key ARN or alias/],
    [{ ...valid, sse: 'aws:kms', sseKmsKeyId: '' }, /must not be empty/],
  ] as const) {
    const errors = errorsFor(body);
    assert.equal(errors[0]?.field, 'sseKmsKeyId', JSON.stringify(errors));
    assert.match(errors[0]?.message ?? '', message);
  }
  const copyErrors = errorsFor({ ...valid, copy: { type: 's3', endpoint: 'http://copy:8080', region: 'us-east-1', bucket: 'copies', accessKey: 'AK', secretKey: 'SK', sseKmsKeyId: 'alias/x' } });
  assert.equal(copyErrors[0]?.field, 'copy.sseKmsKeyId', JSON.stringify(copyErrors));
  const { secretKey, ...update } = valid;
  const stored = resolveDestination({ ...update, sse: 'aws:kms', sseKmsKeyId: 'alias/chango-backups' }, secretKey);
  assert.equal(toPublicDestination(stored).sseKmsKeyId, 'alias/chango-backups');
});

test('missing required fields are each reported', () => {
  const fields = errorsFor({}).map((e) => e.field).sort();
  assert.deepEqual(fields, ['accessKey', 'bucket', 'endpoint', 'region']);
});

test('defaults are resolved when stored, and the public form has no secret value', () => {
  const { secretKey, ...update } = valid;
  const stored = resolveDestination({ ...update, prefix: undefined }, secretKey);
  assert.equal(stored.prefix, '');
  assert.equal(stored.sse, 'AES256');
  assert.equal(stored.schedule, null);
  assert.equal(stored.timezone, 'UTC');
  assert.equal(stored.addressing, 'path');
  assert.equal(stored.objectLock, null, 'no Object Lock unless asked for');
  const shown = toPublicDestination(stored);
  assert.ok(!JSON.stringify(shown).includes(secretKey));
  assert.equal(shown.secretKeySet, true);
});

test('Object Lock: a mode and whole days from 1 to 36500, stored as given; null or absent is off, also in what the api shows', () => {
  assert.deepEqual(errorsFor({ ...valid, objectLock: { mode: 'COMPLIANCE', days: 1 } }), []);
  assert.deepEqual(errorsFor({ ...valid, objectLock: { mode: 'GOVERNANCE', days: 36_500 } }), []);
  assert.deepEqual(errorsFor({ ...valid, objectLock: null }), []);
  const { secretKey, ...update } = valid;
  const locked = resolveDestination({ ...update, objectLock: { mode: 'COMPLIANCE', days: 30 } }, secretKey);
  assert.deepEqual(locked.objectLock, { mode: 'COMPLIANCE', days: 30 });
  assert.deepEqual(toPublicDestination(locked).objectLock, { mode: 'COMPLIANCE', days: 30 });
  // A destination stored before the field existed parses, and shows null.
  const { objectLock: _none, ...older } = resolveDestination(update, secretKey);
  const reread = BackupDestinationSchema.parse(older);
  assert.equal(reread.objectLock, undefined);
  assert.equal(toPublicDestination(reread).objectLock, null);
});

test('a destination that chose no retention gets the 30 newest, said to be the default; keepAll is a choice', () => {
  for (const none of [null, undefined, {}]) {
    const applied = appliedRetention(none);
    assert.deepEqual([applied.rule, applied.source], [{ keepLast: 30 }, 'default']);
    assert.match(applied.words, /the 30 newest.*\(default\)$/);
  }
  assert.deepEqual(appliedRetention({ keepAll: true }), { rule: { keepAll: true }, source: 'configured', words: 'keep every backup' });
  assert.match(appliedRetention({ keepLast: 7, maxAgeDays: 14 }).words, /^keep the 7 newest and those younger than 14 days/);
});
