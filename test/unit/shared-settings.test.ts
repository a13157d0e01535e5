import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeRedis, readSharedSettings, redisConnectionOptions, SHARED_SETTING_DEFAULTS } from '@chango/contracts';
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

test('Redis Sentinel: the sentinels and the master name become the connection options of every client', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chango-sentinel-settings-'));
  try {
    await writeFile(join(dir, 'redis-password'), 'server-secret-1\n', { mode: 0o600 });
    await writeFile(join(dir, 'sentinel-password'), 'sentinel-secret-2\n', { mode: 0o600 });
    const settings = readSharedSettings({
      REDIS_SENTINELS: 'sentinel-a.internal:26379, 10.0.0.2:26380,[::1]:26381',
      REDIS_SENTINEL_MASTER: 'chango',
      REDIS_PASSWORD_FILE: join(dir, 'redis-password'),
      REDIS_SENTINEL_PASSWORD_FILE: join(dir, 'sentinel-password'),
    });
    const sentinels = [
      { host: 'sentinel-a.internal', port: 26379 },
      { host: '10.0.0.2', port: 26380 },
      { host: '::1', port: 26381 },
    ];
    assert.deepEqual(settings.sentinel, { sentinels, masterName: 'chango', sentinelPassword: 'sentinel-secret-2' });
    assert.deepEqual(redisConnectionOptions(settings), { sentinels, name: 'chango', password: 'server-secret-1', sentinelPassword: 'sentinel-secret-2' });
    const words = describeRedis(settings);
    assert.equal(words, 'Redis master "chango" via sentinels sentinel-a.internal:26379,10.0.0.2:26380,::1:26381');
    assert.doesNotMatch(words, /secret/);
    // Without sentinels: the URL, as before; its password never in words.
    assert.deepEqual(redisConnectionOptions(readSharedSettings({ REDIS_URL: 'redis://:pw@r:1/2' })), { url: 'redis://:pw@r:1/2' });
    assert.equal(describeRedis(readSharedSettings({ REDIS_URL: 'redis://:pw@r:1/2' })), 'Redis at redis://:***@r:1/2');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('Redis Sentinel: a bad setting stops the start naming the variable, never a password', async () => {
  assert.throws(() => readSharedSettings({ REDIS_SENTINELS: 'a:26379' }), /REDIS_SENTINEL_MASTER must be set when REDIS_SENTINELS is/);
  assert.throws(() => readSharedSettings({ REDIS_SENTINEL_MASTER: 'chango' }), /REDIS_SENTINELS must be set when REDIS_SENTINEL_MASTER is/);
  assert.throws(() => readSharedSettings({ REDIS_SENTINELS: 'a:26379,b', REDIS_SENTINEL_MASTER: 'm' }), /REDIS_SENTINELS must be a comma-separated list of host:port \(port 1 to 65535\), got "b"/);
  assert.throws(() => readSharedSettings({ REDIS_SENTINELS: 'a:70000', REDIS_SENTINEL_MASTER: 'm' }), /REDIS_SENTINELS must be .* got "a:70000"/);
  assert.throws(() => readSharedSettings({ REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_MASTER: 'my master' }), /REDIS_SENTINEL_MASTER must be the master's name/);
  assert.throws(() => readSharedSettings({ REDIS_PASSWORD_FILE: '/nonexistent/redis-password' }), /REDIS_PASSWORD_FILE names a file that cannot be read: \/nonexistent\/redis-password \(ENOENT\)/);
  const dir = await mkdtemp(join(tmpdir(), 'chango-sentinel-settings-'));
  try {
    await writeFile(join(dir, 'empty'), '\n');
    assert.throws(() => readSharedSettings({ REDIS_SENTINEL_PASSWORD_FILE: join(dir, 'empty'), REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_MASTER: 'm' }), /REDIS_SENTINEL_PASSWORD_FILE names a file whose first line is empty/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
