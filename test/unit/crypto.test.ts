import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { deriveMasterDek } from '@chango/state';
import { AuthenticationFailed, seal, unseal } from '@chango/security';

test('sealed bytes open with the same key and context', () => {
  const key = randomBytes(32);
  const box = seal(key, Buffer.from('access-secret'), 'iam/accesskey/AK1#secret');
  assert.equal(unseal(key, box, 'iam/accesskey/AK1#secret').toString(), 'access-secret');
  assert.ok(!Buffer.from(box.ct, 'base64').includes(Buffer.from('access-secret')));
});

test('a sealed value moved to another record (other context) does not open', () => {
  const key = randomBytes(32);
  const box = seal(key, Buffer.from('s'), 'iam/accesskey/AK1#secret');
  assert.throws(() => unseal(key, box, 'iam/accesskey/AK2#secret'), AuthenticationFailed);
});

test('a flipped ciphertext bit or a wrong key is detected, never returned as garbage', () => {
  const key = randomBytes(32);
  const box = seal(key, Buffer.from('payload'), 'ctx');
  const ct = Buffer.from(box.ct, 'base64');
  ct[0] = (ct[0] ?? 0) ^ 1;
  assert.throws(() => unseal(key, { ...box, ct: ct.toString('base64') }, 'ctx'), AuthenticationFailed);
  assert.throws(() => unseal(randomBytes(32), box, 'ctx'), AuthenticationFailed);
});

test('the master DEK depends on both the root secret and the cluster salt', () => {
  const secret = randomBytes(48);
  const salt = randomBytes(32);
  assert.deepEqual(deriveMasterDek(secret, salt), deriveMasterDek(Buffer.from(secret), Buffer.from(salt)));
  assert.notDeepEqual(deriveMasterDek(secret, salt), deriveMasterDek(randomBytes(48), salt));
  assert.notDeepEqual(deriveMasterDek(secret, salt), deriveMasterDek(secret, randomBytes(32)));
  assert.equal(deriveMasterDek(secret, salt).length, 32);
});
