import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Full garbage collections on demand, for work that turns through far more
 * native memory than JS objects: a backup streams about a byte of
 * short-lived Buffers (gzip members; its file reads reuse theirs) per byte of
 * state, whose JS wrappers are so small that V8 frees them only when the memory Buffers hold
 * has grown by some 64 MiB since its last full collection — and, at the end of
 * a backup, maybe hours later. `BufferGarbage` collects whenever a smaller,
 * set amount has piled up; `collectGarbage` once, now.
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
 * Counts the bytes a stream hands through and, every `everyBytes`, looks at
 * the memory Buffers hold: once it exceeds the least they held since the last
 * collection by `slackBytes`, collects. So the dead Buffers never exceed about
 * the slack, whatever the part size or the state's (the live ones set the base).
 * Each collection costs tens of milliseconds of the event loop: the slack
 * trades that against memory (bench/README.md, issue 15).
 */
export class BufferGarbage {
  private sinceLook = 0;
  private base = process.memoryUsage().arrayBuffers;
  collections = 0;

  constructor(
    private readonly slackBytes: number,
    private readonly everyBytes: number,
  ) {}

  passed(bytes: number): void {
    this.sinceLook += bytes;
    if (this.sinceLook < this.everyBytes) return;
    this.sinceLook = 0;
    const held = process.memoryUsage().arrayBuffers;
    this.base = Math.min(this.base, held);
    if (held - this.base < this.slackBytes) return;
    collectGarbage();
    this.collections++;
    // V8 frees the dead Buffers' memory after the collection, concurrently: the lowest figure seen from now on is the base.
    this.base = Number.POSITIVE_INFINITY;
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
