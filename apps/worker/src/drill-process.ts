import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BackupDestination, DrillKind, DrillSource, StoreCounts } from '@chango/contracts';
import type { S3Timeouts } from '@chango/s3';

export interface DrillRequest {
  destination: BackupDestination;
  /** Where `key` is: the primary destination, or the second copy (destination.copy). */
  from: DrillSource;
  key: string;
  workDir: string;
  /** The worker's S3 bounds (CHANGO_S3_*), which the child does not read from its environment. */
  s3Timeouts: S3Timeouts;
  /** base64; crosses to the child on a pipe only. */
  rootSecret: string;
  /** age identities for encrypted archives (none: such an archive gets a checksum drill); on the pipe only, like the root secret. */
  identities: string[];
}

export type DrillAnswer =
  | { outcome: 'passed'; kind: 'restore'; sha256: string; records: StoreCounts }
  /** An encrypted archive the worker cannot open: its stored bytes match the sidecar. */
  | { outcome: 'passed'; kind: Extract<DrillKind, 'checksum'>; sha256: string; records: null }
  /** The backup does not restore (or its checksums disagree): the reason, in words. */
  | { outcome: 'failed'; error: string }
  /** The drill could not be run (S3 trouble): says nothing about the backup. */
  | { outcome: 'unavailable'; retryable: boolean; error: string };

const CHILD = fileURLToPath(new URL('./drill-child.js', import.meta.url));

/**
 * Runs the restore drill of one backup in a child process (drill-child.ts) and
 * returns its answer. A child that dies without answering (killed, out of
 * memory) is 'unavailable' and retryable: the drill did not run, which says
 * nothing about the backup.
 */
export async function drillInChildProcess(request: Omit<DrillRequest, 'rootSecret' | 'identities'>, secrets: { rootSecret: Buffer; identities: string[] }, abort?: AbortSignal): Promise<DrillAnswer> {
  // Killed when the job stops (deadline, worker stopping): a drill must not outlive its job.
  const child = spawn(process.execPath, [CHILD], { stdio: ['pipe', 'pipe', 'pipe'], ...(abort ? { signal: abort, killSignal: 'SIGKILL' as const } : {}) });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    // An abort shows up as an 'error' (AbortError) followed by 'exit': the exit is what matters.
    child.once('error', (err) => (err.name === 'AbortError' ? undefined : reject(err)));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  child.stdin.end(JSON.stringify({ ...request, rootSecret: secrets.rootSecret.toString('base64'), identities: secrets.identities } satisfies DrillRequest));
  const { code, signal } = await exited;
  try {
    return JSON.parse(stdout.trim().split('\n').pop() ?? '') as DrillAnswer;
  } catch {
    const how = signal ? `signal ${signal}` : `exit status ${code}`;
    return { outcome: 'unavailable', retryable: true, error: `the restore drill process ended (${how}) without an answer: ${stderr.trim() || 'no output'}` };
  }
}
