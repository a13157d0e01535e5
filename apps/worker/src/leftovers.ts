import type { Redis } from 'ioredis';
import { parseBackupKey, redisKeys } from '@chango/contracts';
import type { BackupBucket } from '@chango/s3';
import type { Logger } from '@chango/telemetry';

/**
 * What failed attempts left at the destination and could not remove at the
 * time (the destination was unreachable then): remembered in Redis, removed by
 * the next backup before it starts. Together with aborting incomplete
 * multipart uploads, this is how a failure ends up leaving nothing behind.
 */
export class DestinationLeftovers {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  private get key(): string {
    return redisKeys(this.prefix).pendingDiscards;
  }

  /**
   * Removes an uncommitted attempt's archive (and any multipart upload of it);
   * if the destination does not answer, remembers it for the next backup.
   */
  async discard(bucket: BackupBucket, archiveKey: string): Promise<void> {
    try {
      await bucket.discard(archiveKey);
      await this.redis.srem(this.key, archiveKey).catch(() => undefined);
    } catch (err) {
      this.log.warn({ key: archiveKey, err: (err as Error).message }, 'could not remove what a failed attempt left at the destination: the next backup removes it');
      await this.redis.sadd(this.key, archiveKey).catch((redisErr: unknown) =>
        this.log.error({ key: archiveKey, err: (redisErr as Error).message }, 'could not remember a leftover to remove later either: the next backup\'s sweep of incomplete uploads, or retention after a day, removes it'),
      );
    }
  }

  /** A key found committed after all (a takeover completed it): it must never be removed as a leftover. */
  async forget(archiveKey: string): Promise<void> {
    await this.redis.srem(this.key, archiveKey);
  }

  /** Removes every remembered leftover under this bucket's prefix, and any incomplete multipart upload of ours. Returns what was removed. */
  async sweep(bucket: BackupBucket): Promise<string[]> {
    const remembered = await this.redis.smembers(this.key);
    const removed: string[] = [];
    for (const archiveKey of remembered) {
      // Another destination's leftover stays remembered until a backup goes there again.
      if (!parseBackupKey(bucket.destination.prefix, archiveKey)) continue;
      await bucket.discard(archiveKey);
      await this.redis.srem(this.key, archiveKey);
      removed.push(archiveKey);
    }
    // Backups run one at a time, so any incomplete upload of ours is a leftover.
    removed.push(...(await bucket.abortIncompleteUploads()));
    if (removed.length > 0) this.log.warn({ keys: removed }, 'removed what failed or interrupted attempts left at the destination');
    return removed;
  }
}
