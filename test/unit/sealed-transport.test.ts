import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { openSealedForWorker, sealForWorker, workerTransportKey } from '@chango/security';

test('a secret sealed to the workers opens with the key of any worker of the cluster', () => {
  const rootSecret = randomBytes(48);
  const sealed = sealForWorker('s3-secret-value', workerTransportKey(rootSecret).publicKey);
  assert.ok(!JSON.stringify(sealed).includes('s3-secret-value'));
  // Another worker process derives the same key pair from the same root secret.
  assert.equal(openSealedForWorker(sealed, workerTransportKey(Buffer.from(rootSecret))), 's3-secret-value');
});

test('a worker of another cluster cannot open it, and says why', () => {
  const sealed = sealForWorker('s3-secret-value', workerTransportKey(randomBytes(48)).publicKey);
  assert.throws(() => openSealedForWorker(sealed, workerTransportKey(randomBytes(48))), /another cluster root secret/);
});

test('two seals of the same secret differ (fresh ephemeral key and IV)', () => {
  const key = workerTransportKey(randomBytes(48)).publicKey;
  assert.notDeepEqual(sealForWorker('x', key), sealForWorker('x', key));
});
