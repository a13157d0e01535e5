#!/usr/bin/env node
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { drill } from '@chango/restore';
import { BackupBucket, expectedChecksum, S3Failure } from '@chango/s3';
import type { DrillAnswer, DrillRequest } from './drill-process.js';

/**
 * One restore drill in a process of its own (started by drill-process.ts):
 * download the backup into the work dir, check its checksums (metadata,
 * sidecar, bytes), extract and check every file against the manifest, open the
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
  const bucket = new BackupBucket(request.destination, { timeouts: request.s3Timeouts });
  const { key } = request;
  const archive = await bucket.open(key);
  const expected = expectedChecksum(archive);
  if ('problem' in expected) {
    archive.stream.destroy();
    return { outcome: 'failed', error: expected.problem };
  }
  const spool = join(request.workDir, `drill-${randomUUID()}.tar.gz`);
  try {
    try {
      await pipeline(archive.stream, createWriteStream(spool, { mode: 0o600 }));
    } catch (err) {
      return { outcome: 'unavailable', retryable: true, error: `downloading ${key} failed: ${(err as Error).message}` };
    }
    const report = await drill(createReadStream(spool), request.workDir, Buffer.from(request.rootSecret, 'base64'), { expectedSha256: expected.sha256 });
    return { outcome: 'passed', sha256: report.sha256, records: report.storeCheck.records };
  } catch (err) {
    return { outcome: 'failed', error: (err as Error).message };
  } finally {
    await rm(spool, { force: true });
  }
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
