/**
 * Whether a process with this pid runs (signal 0 checks without sending
 * anything): how a folder named for the process that made it is known to be
 * left behind. EPERM means it runs, as another user. A reused pid reads as
 * running, which only keeps a dead one's folder longer.
 */
export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
