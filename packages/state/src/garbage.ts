import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A full garbage collection on demand, for the end of work that turned
 * through far more native memory than JS objects (a backup's read, gzip and
 * part Buffers): their JS wrappers are so small that V8 would collect them
 * only when it next runs a full collection by itself, maybe hours later.
 *
 * `gc` is reached through V8's `--expose-gc`, set at run time and read from a
 * fresh context, so the processes need no command-line flag and the global
 * scope gets no `gc`. Where that is refused, nothing is collected and the
 * program behaves as before.
 */
// No argument: a full collection. (Node 20's V8 ran `{ type: 'major' }` as a young-generation one: measured.)
type Collect = () => void;

let collect: Collect | null | undefined;

function collector(): Collect | null {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as Collect;
    } catch {
      collect = null;
    }
  }
  return collect;
}

/**
 * One full collection, now: for the end of a large piece of work (a backup), whose
 * promoted Buffers would otherwise hold their memory until V8 next runs one. With glibc's mmap
 * threshold fixed (MALLOC_MMAP_THRESHOLD_, as the systemd unit sets it) their memory then goes back
 * to the system at once. A few milliseconds on the worker's heap.
 */
export function collectGarbage(): void {
  collector()?.();
}
