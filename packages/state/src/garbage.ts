import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Garbage collections on demand, for work that turns through far more native
 * memory than JS objects: a young-generation one every few MiB
 * (`YoungGarbage`), a full one when a large piece of work is done
 * (`collectGarbage`).
 *
 * Why: the rocksdb binding copies every value it reads into a Buffer of its
 * own (malloc'd outside V8's heap). A checkpoint of 1 GiB of state makes a GiB
 * of such Buffers, each dead a moment later, but their JS wrappers are so
 * small that the young generation hardly fills: V8 collects them only when
 * the native memory they hold has grown by tens of MiB, and by then many
 * have been promoted, to wait for a full collection. A scavenge every few MiB
 * frees them while they are young, at well under a millisecond each (it
 * touches only the live young objects). Measured on 256 MiB of state (bench/
 * README.md, issue 15): the worker's peak RSS in the checkpoint phase fell
 * from 194 to 155–161 MiB (with MALLOC_MMAP_THRESHOLD_ set, as installed).
 *
 * `gc` is reached through V8's `--expose-gc`, set at run time and read from a
 * fresh context, so the processes need no command-line flag and the global
 * scope gets no `gc`. Where that is refused, nothing is collected and the
 * program behaves as before.
 */
// No argument: a full collection. (Node 20's V8 ran `{ type: 'major' }` as a young-generation one: measured.)
type Collect = (options?: { type: 'minor' }) => void;

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

/** Counts native bytes handed through and scavenges each time another `everyBytes` have passed. */
export class YoungGarbage {
  private sinceLast = 0;

  constructor(private readonly everyBytes: number) {}

  /** `bytes` more went through Buffers that are garbage now (or soon). */
  passed(bytes: number): void {
    this.sinceLast += bytes;
    if (this.sinceLast < this.everyBytes) return;
    this.sinceLast = 0;
    collector()?.({ type: 'minor' });
  }
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
