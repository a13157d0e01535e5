/**
 * What was read from small objects that do not change: a sidecar is written
 * once, when its backup commits, and a drill record only when a drill runs
 * again — and either way the object's ETag changes with its content. So a
 * value read once is good for as long as the listing shows the same ETag, and
 * a listing need not GET every sidecar again on every call.
 *
 * Keyed by where the object lives (endpoint, bucket, key) and its ETag; a
 * changed ETag is simply a miss, and the new content is read (and checked)
 * like the first time. Bounded: the least recently used entries go first, so
 * memory stays flat however many backups a destination holds.
 */
export class RememberedObjects<T> {
  private readonly entries = new Map<string, T>();

  constructor(private readonly capacity: number) {}

  get(place: string, etag: string): T | undefined {
    const id = `${place}\u0000${etag}`;
    const value = this.entries.get(id);
    if (value === undefined) return undefined;
    // Map keeps insertion order: re-inserting makes this the most recently used.
    this.entries.delete(id);
    this.entries.set(id, value);
    return value;
  }

  set(place: string, etag: string, value: T): void {
    const id = `${place}\u0000${etag}`;
    this.entries.delete(id);
    this.entries.set(id, value);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
