#!/usr/bin/env node
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { HashingCounter } from '@chango/archive';
import { parseBackupKey } from '@chango/contracts';

/** Whether an archive's name (whatever folder or prefix it is under) says it is encrypted to offline recipients. */
const isEncryptedName = (key: string): boolean => parseBackupKey('', basename(key))?.encrypted ?? false;
import { drill } from '@chango/restore';
import { AGE_MAGIC, looksAgeEncrypted } from '@chango/security';
import { BackupBucket, expectedChecksum, S3Failure } from '@chango/s3';
import { openCopyStore, type CopyReadable } from './copy-stores.js';
import type { DrillAnswer, DrillRequest } from './drill-process.js';

/**
 * One restore drill in a process of its own (started by drill-process.ts):
 * download the backup into the work dir, check its checksums (metadata,
 * sidecar, bytes), decrypt it when it is encrypted to offline recipients
 * (with the worker's identities; without any, see checksumDrill), extract and check every file against the manifest, open the
 * stores with the root secret, decrypt every secret, compare record counts.
 *
 * Why a process: a hostile or broken archive is parsed away from the worker
 * that holds the live stores, and the memory a drill needs (download buffers,
 * a second set of open stores) goes back to the system when it ends, instead
 * of staying in the worker. The request (with the root secret and the S3
 * secret key) arrives as JSON on stdin — never argv or the environment, which
 * other users can read; the answer leaves as one JSON line on stdout.
 */
async function runDrill(request: DrillRequest): Promise<DrillAnswer> {
  const { key } = request;
  const archive = await openDrilled(request);
  const { expected } = archive;
  if ('problem' in expected) {
    archive.stream.destroy();
    return { outcome: 'failed', error: expected.problem };
  }
  const spool = join(request.workDir, `drill-${randomUUID()}.tar.gz`);
  const downloaded = new HashingCounter();
  try {
    try {
      await pipeline(archive.stream, downloaded, createWriteStream(spool, { mode: 0o600 }));
    } catch (err) {
      return { outcome: 'unavailable', retryable: true, error: `downloading ${key} failed: ${(err as Error).message}` };
    }
    if (isEncryptedName(key) && request.identities.length === 0) {
      return checksumDrill(key, spool, downloaded.sha256(), expected.sha256);
    }
    const report = await drill(createReadStream(spool), request.workDir, Buffer.from(request.rootSecret, 'base64'), { expectedSha256: expected.sha256, identities: request.identities });
    return { outcome: 'passed', kind: 'restore', sha256: report.sha256, records: report.storeCheck.records };
  } catch (err) {
    return { outcome: 'failed', error: (err as Error).message };
  } finally {
    await rm(spool, { force: true });
  }
}

/** The archive to drill, at the primary destination or at the second copy, with the checksum it must have. */
async function openDrilled(request: DrillRequest): Promise<CopyReadable> {
  if (request.from === 'copy') {
    if (!request.destination.copy) throw new Error('no second copy is configured: there is nothing to drill from');
    return openCopyStore(request.destination.copy, { s3Timeouts: request.s3Timeouts }).open(request.key);
  }
  const archive = await new BackupBucket(request.destination, { timeouts: request.s3Timeouts }).open(request.key);
  return { stream: archive.stream, expected: expectedChecksum(archive) };
}

/**
 * The drill of an archive encrypted to offline recipients when the worker
 * holds no identity: the stored bytes must be the ones the sidecar names,
 * and must be an age file. That proves the destination kept what the backup
 * wrote; whether it restores, only a drill with the identity can tell.
 */
async function checksumDrill(key: string, spool: string, sha256: string, expected: string): Promise<DrillAnswer> {
  if (sha256 !== expected) {
    return { outcome: 'failed', error: `the stored bytes of ${key} have sha256 ${sha256}, but its sidecar says ${expected}: the object changed after the backup` };
  }
  const head = Buffer.alloc(AGE_MAGIC.length);
  const file = await open(spool, 'r');
  try {
    await file.read(head, 0, head.length, 0);
  } finally {
    await file.close();
  }
  if (!looksAgeEncrypted(head)) return { outcome: 'failed', error: `${key} is named as encrypted (.age) but does not start with an age header: it is not what the backup wrote` };
  return { outcome: 'passed', kind: 'checksum', sha256, records: null };
}

/**
 * The drill dies with its worker: a worker killed with SIGKILL cannot kill its
 * child, and a restarted worker empties the work dir the drill is writing in.
 * Orphaned, this process is re-parented: then it ends.
 */
function exitWhenOrphaned(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(3);
  }, 1000).unref();
}

async function main(): Promise<void> {
  exitWhenOrphaned();
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as DrillRequest;
  let answer: DrillAnswer;
  try {
    answer = await runDrill(request);
  } catch (err) {
    // Only S3 trouble before the download gets here: it says nothing about the backup.
    answer = err instanceof S3Failure ? { outcome: 'unavailable', retryable: err.retryable, error: err.message } : { outcome: 'unavailable', retryable: true, error: (err as Error).message };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}

await main();
