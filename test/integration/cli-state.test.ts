import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { newRootSecret, tempDir } from '../../testkit/fixtures.js';
import { runCli } from '../../testkit/processes.js';

test('state seed then state stats --json: the counts match what was seeded, every secret decrypts', async (t) => {
  const dataDir = join(await tempDir(t), 'data');
  const env = { CHANGO_ROOT_SECRET: newRootSecret() };
  const seeded = await runCli(['state', 'seed', '--data-dir', dataDir, '--users', '7', '--components', '120', '--json'], env);
  assert.equal(seeded.code, 0, seeded.stderr);
  const summary = JSON.parse(seeded.stdout) as Record<string, number>;

  const stats = await runCli(['state', 'stats', '--data-dir', dataDir, '--json'], env);
  assert.equal(stats.code, 0, stats.stderr);
  const counts = JSON.parse(stats.stdout);
  assert.equal(counts.iam.users, 7);
  assert.equal(counts.iam.accessKeys, summary.accessKeys);
  assert.equal(counts.iam.groups, summary.groups);
  assert.equal(counts.iam.policies, summary.policies);
  assert.equal(counts.metadata.components, 120);
  assert.equal(counts.metadata.clusters, summary.clusters);
  assert.equal(counts.iam.records, 7 + summary.accessKeys! + summary.groups! + summary.policies!);
  assert.ok(counts.kms.records >= 3 && counts.kms.keks >= 1);
  assert.equal(counts.secretsDecrypted, summary.accessKeys! + 120, 'one access secret per key, one secrets object per component');
});

test('state stats with another root secret exits non-zero with one clear line', async (t) => {
  const dataDir = join(await tempDir(t), 'data');
  await runCli(['state', 'seed', '--data-dir', dataDir, '--users', '1', '--components', '1'], { CHANGO_ROOT_SECRET: newRootSecret() });
  const result = await runCli(['state', 'stats', '--data-dir', dataDir], { CHANGO_ROOT_SECRET: newRootSecret() });
  assert.equal(result.code, 1);
  assert.match(result.stderr.trim(), /^chango-backup: the cluster root secret does not match/);
  assert.equal(result.stdout, '');
});

test('state stats on a folder with no stores says so', async (t) => {
  const dataDir = await tempDir(t);
  const result = await runCli(['state', 'stats', '--data-dir', dataDir], { CHANGO_ROOT_SECRET: newRootSecret() });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /no Chango state in .*kms\/, iam\/, metadata\/ missing/);
});

test('a malformed count names the option', async (t) => {
  const dataDir = await tempDir(t);
  const result = await runCli(['state', 'seed', '--data-dir', dataDir, '--users', 'many'], { CHANGO_ROOT_SECRET: newRootSecret() });
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /--users must be a whole number, got "many"/);
});
