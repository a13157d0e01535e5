/**
 * Where the secrets come from when systemd passes them as credentials (LoadCredential=, README "Install
 * on a master host"): the root secret, the api tokens file and the drills' age identity are each given
 * one way — a variable or the credential — and two ways at once is refused, naming both.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateX25519Identity } from 'age-encryption';
import { chooseTokensFile, oneSource, systemdCredential } from '@chango/security';
import { chooseRootSecretSource, isStateError, loadRootSecret } from '@chango/state';
import { readApiConfig } from '../../apps/api/src/config.js';
import { ageIdentityFile, readWorkerConfig } from '../../apps/worker/src/config.js';
import { newRootSecret, tempDir } from '../../testkit/fixtures.js';

const CREDENTIAL = '/run/credentials/chango-backup-worker.service/root-secret';

test('oneSource: none given is undefined, one is taken, an empty variable is not given, two or three are refused naming each', () => {
  assert.equal(oneSource('thing', [{ label: 'A', value: undefined }, { label: 'B', value: '' }]), undefined);
  assert.deepEqual(oneSource('thing', [{ label: 'A', value: undefined }, { label: 'B', value: 'b' }]), { label: 'B', value: 'b' });
  assert.throws(() => oneSource('thing', [{ label: 'A', value: 'a' }, { label: 'B', value: 'b' }]), {
    message: 'the thing is given twice: by A and by B; give it one way only, so it is clear which one is meant',
  });
  assert.throws(() => oneSource('thing', [{ label: 'A', value: 'a' }, { label: 'B', value: 'b' }, { label: 'C', value: 'c' }]), {
    message: 'the thing is given 3 times: by A, by B and by C; give it one way only, so it is clear which one is meant',
  });
});

test('the root secret: each of its three ways alone is taken; none is undefined', () => {
  assert.deepEqual(chooseRootSecretSource({ CHANGO_ROOT_SECRET_FILE: '/etc/chango/root-secret' }, undefined), { from: 'CHANGO_ROOT_SECRET_FILE', path: '/etc/chango/root-secret' });
  assert.deepEqual(chooseRootSecretSource({ CHANGO_ROOT_SECRET: 'k'.repeat(32) }, undefined), { from: 'CHANGO_ROOT_SECRET', value: 'k'.repeat(32) });
  assert.deepEqual(chooseRootSecretSource({ CREDENTIALS_DIRECTORY: '/run/credentials/x' }, CREDENTIAL), { from: 'credential', path: CREDENTIAL });
  assert.equal(chooseRootSecretSource({}, undefined), undefined);
});

test('the root secret: a variable beside the credential is refused, naming the variable and where the credential is; the secret is never in the words', () => {
  const inline = 'inline-secret-'.padEnd(40, 'x');
  const cases: [Record<string, string>, RegExp][] = [
    [{ CHANGO_ROOT_SECRET_FILE: '/etc/chango/root-secret' }, /given twice: by CHANGO_ROOT_SECRET_FILE and by the systemd credential root-secret \(\/run\/credentials\/chango-backup-worker\.service\/root-secret, from the unit's LoadCredential=\)/],
    [{ CHANGO_ROOT_SECRET: inline }, /given twice: by CHANGO_ROOT_SECRET and by the systemd credential root-secret/],
    [{ CHANGO_ROOT_SECRET_FILE: '/etc/chango/root-secret', CHANGO_ROOT_SECRET: inline }, /given 3 times: by CHANGO_ROOT_SECRET_FILE, by CHANGO_ROOT_SECRET and by the systemd credential root-secret/],
  ];
  for (const [env, words] of cases) {
    assert.throws(
      () => chooseRootSecretSource(env, CREDENTIAL),
      (err) => isStateError(err, 'ROOT_SECRET_AMBIGUOUS') && words.test(err.message) && !err.message.includes(inline),
    );
  }
  // Without the credential, the two variables are refused as they always were.
  assert.throws(() => chooseRootSecretSource({ CHANGO_ROOT_SECRET_FILE: '/x', CHANGO_ROOT_SECRET: inline }, undefined), (err) => isStateError(err, 'ROOT_SECRET_AMBIGUOUS'));
});

test('the api tokens file: the variable or the credential, not both, and none stops the start saying both ways', () => {
  assert.equal(chooseTokensFile('/etc/chango/api-tokens', undefined), '/etc/chango/api-tokens');
  assert.equal(chooseTokensFile(undefined, '/run/credentials/chango-backup-api.service/api-tokens'), '/run/credentials/chango-backup-api.service/api-tokens');
  assert.throws(() => chooseTokensFile(undefined, undefined), /^Error: CHANGO_API_TOKENS_FILE is not set and there is no systemd credential api-tokens: the api does not start without a tokens file .*LoadCredential=api-tokens:\/etc\/chango-backup\/api-tokens/);
  assert.throws(() => chooseTokensFile('/etc/chango/api-tokens', '/run/credentials/chango-backup-api.service/api-tokens'), {
    message: /^the api tokens file is given twice: by CHANGO_API_TOKENS_FILE and by the systemd credential api-tokens \(\/run\/credentials\/chango-backup-api\.service\/api-tokens/,
  });
});

test('the age identity for drills: the variable or the credential, none is none (checksum drills), both is refused', () => {
  assert.equal(ageIdentityFile('/etc/chango/age-identity', undefined), '/etc/chango/age-identity');
  assert.equal(ageIdentityFile(undefined, '/run/credentials/w/age-identity'), '/run/credentials/w/age-identity');
  assert.equal(ageIdentityFile(undefined, undefined), undefined);
  assert.throws(() => ageIdentityFile('/etc/chango/age-identity', '/run/credentials/w/age-identity'), {
    message: /^the age identity file is given twice: by CHANGO_AGE_IDENTITY_FILE and by the systemd credential age-identity \(\/run\/credentials\/w\/age-identity/,
  });
});

test('a credential is the file of that name in CREDENTIALS_DIRECTORY, and only when it is there', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'root-secret'), 'x', { mode: 0o400 });
  assert.equal(systemdCredential({}, 'root-secret'), undefined);
  assert.equal(systemdCredential({ CREDENTIALS_DIRECTORY: dir }, 'root-secret'), join(dir, 'root-secret'));
  assert.equal(systemdCredential({ CREDENTIALS_DIRECTORY: dir }, 'api-tokens'), undefined);
  assert.equal(systemdCredential({ CREDENTIALS_DIRECTORY: join(dir, 'missing') }, 'root-secret'), undefined);
});

test('the worker takes its root secret and age identity from CREDENTIALS_DIRECTORY alone; the api its tokens file', async (t) => {
  const dir = await tempDir(t);
  const credentials = join(dir, 'credentials');
  await mkdir(credentials);
  const secret = newRootSecret();
  await writeFile(join(credentials, 'root-secret'), `${secret}\n`, { mode: 0o400 });
  const identity = await generateX25519Identity();
  await writeFile(join(credentials, 'age-identity'), `# created: by the test\n${identity}\n`, { mode: 0o400 });
  await writeFile(join(credentials, 'api-tokens'), '# none needed to read the config\n', { mode: 0o400 });

  const worker = readWorkerConfig({ CREDENTIALS_DIRECTORY: credentials, CHANGO_DATA_DIR: join(dir, 'data') });
  assert.equal(worker.rootSecret.toString(), secret);
  assert.deepEqual(worker.ageIdentities, [identity]);
  assert.equal(readApiConfig({ CREDENTIALS_DIRECTORY: credentials }).tokensFile, join(credentials, 'api-tokens'));

  // Without the age-identity credential: no identity, drills of encrypted archives check bytes only.
  const onlySecret = join(dir, 'only-secret');
  await mkdir(onlySecret);
  await writeFile(join(onlySecret, 'root-secret'), secret, { mode: 0o400 });
  assert.deepEqual(readWorkerConfig({ CREDENTIALS_DIRECTORY: onlySecret, CHANGO_DATA_DIR: join(dir, 'data') }).ageIdentities, []);

  // A credentials directory without root-secret (e.g. a unit that passes only the identity) says so.
  assert.throws(
    () => loadRootSecret({ CREDENTIALS_DIRECTORY: join(dir, 'empty') }),
    (err) => isStateError(err, 'ROOT_SECRET_MISSING') && err.message.includes(`the systemd credentials directory ${join(dir, 'empty')} (CREDENTIALS_DIRECTORY) holds no root-secret`),
  );
  // Outside systemd, the refusal says how to pass it with LoadCredential= too.
  assert.throws(() => loadRootSecret({}), (err) => isStateError(err, 'ROOT_SECRET_MISSING') && /or under systemd pass it with LoadCredential=root-secret:\/etc\/chango-backup\/root-secret/.test(err.message));
});
