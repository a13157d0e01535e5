import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { collectStats, isStateError, verifyPassword, STORE_NAMES } from '@chango/state';
import { filesBelow, filesContaining, newRootSecret, tempDir } from '../../testkit/fixtures.js';
import { ldb } from '../../testkit/processes.js';
import { openState, plantSecrets } from '../../testkit/state.js';

test('reopening with the same root secret reads every record and decrypts every secret', async (t) => {
  const dataDir = await tempDir(t);
  const secret = newRootSecret();
  const first = await openState(dataDir, secret, true);
  const planted = await plantSecrets(first);
  await first.close();

  const again = await openState(dataDir, secret);
  t.after(() => again.close());
  const user = await again.iam.getUser('alice');
  assert.ok(user && (await verifyPassword(planted.password, user.passwordHash)), 'password verifies against its hash');
  const key = await again.iam.getAccessKey(planted.accessKeyId);
  assert.ok(key);
  assert.equal(again.iam.accessKeySecret(key), planted.accessSecret);
  const component = await again.metadata.getComponent('kafka-1');
  assert.ok(component);
  assert.deepEqual(again.metadata.componentSecrets(component), { adminPassword: planted.componentPassword });
  assert.deepEqual(await again.metadata.backupDestination(), planted.destination);
  const stats = await collectStats(again);
  assert.equal(stats.secretsDecrypted, 3);
  assert.deepEqual([stats.iam.users, stats.iam.accessKeys, stats.metadata.components], [1, 1, 1]);
});

test('a wrong root secret is refused at open, naming the root secret', async (t) => {
  const dataDir = await tempDir(t);
  const secret = newRootSecret();
  const created = await openState(dataDir, secret, true);
  await plantSecrets(created);
  await created.close();
  await assert.rejects(
    openState(dataDir, newRootSecret()),
    (err) => isStateError(err, 'ROOT_SECRET_WRONG') && /root secret does not match/.test(err.message),
  );
  // The refusal released the stores and changed nothing: the right secret still opens them.
  const reopened = await openState(dataDir, secret);
  assert.equal((await collectStats(reopened)).secretsDecrypted, 3);
  await reopened.close();
});

test('no plaintext secret appears in any byte of the store folders (WAL, SST, MANIFEST)', async (t) => {
  const dataDir = await tempDir(t);
  const secret = newRootSecret();
  const state = await openState(dataDir, secret, true);
  const planted = await plantSecrets(state);
  // Also write the stores out as compacted SSTs, the form a backup ships.
  const checkpointDir = await tempDir(t, 'chango-checkpoint');
  await state.checkpoint(checkpointDir);
  await state.close();

  for (const dir of [dataDir, checkpointDir]) {
    const files = await filesBelow(dir);
    assert.ok(files.some((f) => f.endsWith('.log')) || files.some((f) => f.endsWith('.sst')), `${dir} holds data files`);
    // Control: a non-secret value planted the same way is found, so the search can see plaintext.
    assert.notDeepEqual(await filesContaining(dir, planted.accessKeyId), [], `access key id visible in ${dir}`);
    for (const [name, value] of Object.entries({
      password: planted.password,
      accessSecret: planted.accessSecret,
      componentPassword: planted.componentPassword,
      s3SecretKey: planted.destination.secretKey,
      rootSecret: secret,
    })) {
      assert.deepEqual(await filesContaining(dir, value), [], `${name} must not appear in ${dir}`);
    }
  }
});

test('stock RocksDB ldb reads a store we wrote', async (t) => {
  const dataDir = await tempDir(t);
  const state = await openState(dataDir, newRootSecret(), true);
  const planted = await plantSecrets(state);
  const iamRecords = await state.countRecords('iam');
  await state.close();
  const scan = await ldb([`--db=${join(dataDir, 'iam')}`, 'scan']);
  const lines = scan.trim().split('\n');
  assert.equal(lines.length, iamRecords);
  assert.ok(lines.some((line) => line.startsWith(`accesskey/${planted.accessKeyId} : `)));
});

test('an empty kms/ beside iam/ and metadata/ records is refused instead of starting a new KMS', async (t) => {
  const dataDir = await tempDir(t);
  const secret = newRootSecret();
  const state = await openState(dataDir, secret, true);
  await plantSecrets(state);
  await state.close();
  await rm(join(dataDir, 'kms'), { recursive: true });
  await mkdir(join(dataDir, 'kms'));
  await assert.rejects(openState(dataDir, secret, true), (err) => isStateError(err, 'KMS_MISSING') && /restore kms\//.test(err.message));
});

test('opening a data dir with no stores names what is missing', async (t) => {
  const dataDir = await tempDir(t);
  await assert.rejects(
    openState(dataDir, newRootSecret()),
    (err) => isStateError(err, 'STORES_MISSING') && STORE_NAMES.every((name) => err.message.includes(`${name}/`)),
  );
});
