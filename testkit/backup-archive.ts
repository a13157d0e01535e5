import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { buildManifest, createArchiveStream, HashingCounter, type Manifest } from '@chango/archive';
import { collectStats, type StateStats } from '@chango/state';
import { seedState } from '@chango/seed';
import { newRootSecret, tempDir, type CleanupScope } from './fixtures.js';
import { openState, plantSecrets } from './state.js';

/** One real backup archive on disk: a seeded state, checkpointed, archived by the real writer. */
export interface BackupArchive {
  rootSecret: Buffer;
  /** What the source state held when the checkpoint was taken. */
  stats: StateStats;
  checkpointDir: string;
  manifest: Manifest;
  archive: string;
  sha256: string;
  size: number;
}

export async function makeBackupArchive(scope: CleanupScope, seed = { users: 6, components: 300 }): Promise<BackupArchive> {
  const root = await tempDir(scope, 'chango-restore-src');
  const secret = newRootSecret();
  const state = await openState(join(root, 'data'), secret, true);
  try {
    await seedState(state, seed);
    await plantSecrets(state);
    const stats = await collectStats(state);
    const checkpointDir = join(root, 'checkpoint');
    const checkpoint = await state.checkpoint(checkpointDir);
    const manifest = await buildManifest(checkpointDir, {
      backupId: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
      timestamp: new Date('2025-06-07T08:09:10.000Z'),
      hostname: 'master-1',
      changoVersion: '2.4.1',
      records: { kms: checkpoint.stores.kms.records, iam: checkpoint.stores.iam.records, metadata: checkpoint.stores.metadata.records },
    });
    const archive = join(root, 'backup.tar.gz');
    const counter = new HashingCounter();
    // Small gzip members, so this small state still gives an archive of several members, as big ones are.
    await pipeline(createArchiveStream(checkpointDir, manifest, { gzipLevel: 6, chunkBytes: 64 * 1024 }), counter, createWriteStream(archive));
    return { rootSecret: Buffer.from(secret), stats, checkpointDir, manifest, archive, sha256: counter.sha256(), size: counter.bytes };
  } finally {
    await state.close();
  }
}
