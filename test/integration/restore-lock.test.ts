import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { drill, isRestoreError, lockForRestore, restoreInto } from '@chango/restore';
import { makeBackupArchive, type BackupArchive } from '../../testkit/backup-archive.js';
import { SuiteScope, tempDir, waitFor, writeSecretFile } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';
import { runCli } from '../../testkit/processes.js';

/** The pid of a process that has ended (a node that exits at once). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid ?? 0;
}

describe('one restore at a time per data dir; what a dead restore or drill left is cleaned up', () => {
  const scope = new SuiteScope();
  let backup: BackupArchive;
  let secretFile: string;

  before(async () => {
    backup = await makeBackupArchive(scope);
    secretFile = await writeSecretFile(await tempDir(scope, 'chango-secret'), backup.rootSecret.toString('utf8'));
  });
  after(() => scope.run());

  const restore = (dataDir: string) => runCli(['restore', '--file', backup.archive, '--sha256', backup.sha256, '--data-dir', dataDir], { CHANGO_ROOT_SECRET_FILE: secretFile });

  test('a second restore into the same data dir refuses at once, naming the process that holds the lock, and changes nothing', async () => {
    const dataDir = join(await tempDir(scope, 'chango-restore-lock'), 'data');
    await mkdir(dataDir);
    // The lock held as a restore under way holds it (this test process plays that restore).
    const held = await lockForRestore(dataDir);
    try {
      const second = await restore(dataDir);
      assert.equal(second.code, 1, second.stdout);
      assert.match(second.stderr, new RegExp(`another restore into ${dataDir} is running \\(process ${process.pid} holds .*LOCK\\).*Nothing was changed`));
      assert.deepEqual((await readdir(dataDir)).filter((name) => !name.startsWith('.chango-restore.lock')), [], 'no store, no staging folder');
    } finally {
      await held.release();
    }
    const again = await restore(dataDir);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual((await readdir(dataDir)).sort(), ['iam', 'kms', 'metadata'], 'the lock is gone with the restore that held it');
  });

  test('two restores at once in one process: the second is refused while the first reads its archive', async () => {
    const dataDir = join(await tempDir(scope, 'chango-restore-twice'), 'data');
    // The first restore's archive arrives slowly: it holds the lock while it waits.
    const slow = new PassThrough();
    const first = restoreInto(dataDir, slow, { expectedSha256: backup.sha256, rootSecret: backup.rootSecret });
    // Its staging folder exists once it holds the lock.
    await waitFor('the first restore to hold the lock', async () => ((await readdir(dataDir).catch(() => [])).some((name) => name.startsWith('.chango-restore-')) ? true : undefined), SAFETY_NET_MS, 10);
    const second = await restoreInto(dataDir, createReadStream(backup.archive), { expectedSha256: backup.sha256 }).then(
      () => 'restored',
      (err: unknown) => err,
    );
    assert.ok(isRestoreError(second, 'RESTORE_IN_PROGRESS'), String(second));
    assert.match((second as Error).message, new RegExp(`process ${process.pid} holds`));
    createReadStream(backup.archive).pipe(slow);
    const report = await first;
    assert.equal(report.files, backup.manifest.stores.kms.files.length + backup.manifest.stores.iam.files.length + backup.manifest.stores.metadata.files.length);
  });

  test('a staging folder left by a restore that died is removed by the next restore, which says so', async () => {
    const dataDir = join(await tempDir(scope, 'chango-restore-leftover'), 'data');
    const leftover = join(dataDir, '.chango-restore-0b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8');
    await mkdir(join(leftover, 'kms'), { recursive: true });
    await writeFile(join(leftover, 'kms', '000042.sst'), 'half of a store');
    const run = await restore(dataDir);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`removed ${leftover}, left by an earlier restore that did not finish`));
    assert.deepEqual((await readdir(dataDir)).sort(), ['iam', 'kms', 'metadata']);
  });

  test("a drill folder whose drill died is removed by the next drill; one whose drill runs is not touched", async () => {
    const workDir = await tempDir(scope, 'chango-drill-work');
    const dead = join(workDir, `.chango-drill-${await deadPid()}-aB3dE9`);
    const live = join(workDir, `.chango-drill-${process.pid}-xY7zQ1`);
    for (const dir of [dead, live]) {
      await mkdir(join(dir, 'iam'), { recursive: true });
      await writeFile(join(dir, 'iam', 'CURRENT'), 'MANIFEST-000001\n');
    }
    const report = await drill(createReadStream(backup.archive), workDir, backup.rootSecret, { expectedSha256: backup.sha256 });
    assert.deepEqual(report.removedStale, [dead]);
    assert.deepEqual(await readdir(workDir), [live.slice(workDir.length + 1)], 'the live one stays; the drill removed its own');
  });
});
