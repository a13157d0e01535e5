import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readSharedSettings, SHARED_SETTING_DEFAULTS } from '@chango/contracts';
import { readApiConfig } from '../../apps/api/src/config.js';

test('unset or empty shared settings take the documented defaults', () => {
  assert.deepEqual(readSharedSettings({}), SHARED_SETTING_DEFAULTS);
  assert.deepEqual(readSharedSettings({ REDIS_URL: '', CHANGO_QUEUE_PREFIX: '', CHANGO_BACKUP_ATTEMPTS: '', CHANGO_BACKUP_BACKOFF_MS: '' }), SHARED_SETTING_DEFAULTS);
  assert.deepEqual(SHARED_SETTING_DEFAULTS, { redisUrl: 'redis://127.0.0.1:6379', queuePrefix: 'chango', retry: { attempts: 3, backoffMs: 10_000 } });
});

test('shared settings are read as given', () => {
  const settings = readSharedSettings({ REDIS_URL: 'redis://redis.internal:6380/2', CHANGO_QUEUE_PREFIX: 'prod', CHANGO_BACKUP_ATTEMPTS: '5', CHANGO_BACKUP_BACKOFF_MS: '250' });
  assert.deepEqual(settings, { redisUrl: 'redis://redis.internal:6380/2', queuePrefix: 'prod', retry: { attempts: 5, backoffMs: 250 } });
});

test('a bad value stops the start naming every variable at fault and what it must be', () => {
  assert.throws(() => readSharedSettings({ CHANGO_BACKUP_ATTEMPTS: 'three' }), /^Error: CHANGO_BACKUP_ATTEMPTS must be a whole number from 1 to 20, got "three"$/);
  assert.throws(() => readSharedSettings({ CHANGO_BACKUP_ATTEMPTS: '0', CHANGO_BACKUP_BACKOFF_MS: '1.5' }), (err: Error) => {
    assert.match(err.message, /CHANGO_BACKUP_ATTEMPTS must be a whole number from 1 to 20, got "0"/);
    assert.match(err.message, /CHANGO_BACKUP_BACKOFF_MS must be a whole number from 10 to 3600000, got "1.5"/);
    return true;
  });
});

test('the api reads the same shared settings as the worker', () => {
  const env = { CHANGO_API_TOKENS_FILE: '/etc/chango/tokens', REDIS_URL: 'redis://r:1', CHANGO_QUEUE_PREFIX: 'p', CHANGO_BACKUP_ATTEMPTS: '4', CHANGO_BACKUP_BACKOFF_MS: '99' };
  const api = readApiConfig(env);
  assert.deepEqual({ redisUrl: api.redisUrl, queuePrefix: api.queuePrefix, retry: api.retry }, readSharedSettings(env));
});
