import type { Redis } from 'ioredis';
import { parseBackupKey, redisKeys } from '@chango/contracts';
import { S3Failure, type BackupBucket } from '@chango/s3';
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
   * if the destination does not answer — or already did not when the attempt
   * failed (`cause`) — remembers it for the next backup instead of waiting on
   * it again. An archive S3 Object Lock holds (the attempt failed after it was
   * locked) is hidden, not fought: see lockedLeftover.
   */
  async discard(bucket: BackupBucket, archiveKey: string, cause?: unknown): Promise<void> {
    try {
      if (cause instanceof S3Failure && cause.destinationSilent) throw cause;
      this.lockedLeftover(bucket, archiveKey, await bucket.discard(archiveKey));
      await this.redis.srem(this.key, archiveKey).catch(() => undefined);
    } catch (err) {
      this.log.warn({ key: archiveKey, err: (err as Error).message }, 'could not remove what a failed attempt left at the destination: the next backup removes it');
      await this.redis.sadd(this.key, archiveKey).catch((redisErr: unknown) =>
        this.log.error({ key: archiveKey, err: (redisErr as Error).message }, 'could not remember a leftover to remove later either: the next backup\'s sweep of incomplete uploads, or retention after a day, removes it'),
      );
    }
  }

  /**
   * A leftover whose versions Object Lock still holds cannot be deleted
   * before its retain-until date, and trying again would never help sooner:
   * it was hidden behind a delete marker (nothing lists it, no restore finds
   * it) and is not remembered for later. Said once, with what removes it.
   */
  private lockedLeftover(bucket: BackupBucket, archiveKey: string, discarded: { lockedVersionsLeft: string[] }): void {
    if (discarded.lockedVersionsLeft.length === 0) return;
    const lock = bucket.objectLock;
    this.log.warn(
      { key: archiveKey, objects: discarded.lockedVersionsLeft, objectLock: lock },
      `what a failed attempt left is under S3 Object Lock${lock ? ` (${lock.mode}, ${lock.days} days from when it was written)` : ''}: hidden behind a delete marker; ` +
        'its locked version stays in the bucket until its retain-until date, when a lifecycle rule with NoncurrentVersionExpiration removes it (README, "Object Lock")',
    );
  }

  /** A key found committed after all (a takeover completed it): it must never be removed as a leftover. */
  async forget(archiveKey: string): Promise<void> {
    await this.redis.srem(this.key, archiveKey);
  }

  /**
   * Removes every remembered leftover under this bucket's prefix, and any
   * incomplete multipart upload of ours. A destination that does not answer
   * fails the sweep (and so the attempt: it would not take an upload either);
   * one that refuses a deletion (a policy without DeleteObject) is logged and
   * the backup goes on — leftovers must never stop backups.
   */
  async sweep(bucket: BackupBucket): Promise<string[]> {
    const removed: string[] = [];
    const refused = (what: string, err: unknown) => {
      if (err instanceof S3Failure && !err.destinationSilent && !err.retryable) {
        this.log.warn({ leftover: what, err: err.message }, 'the destination refused to remove a leftover: left in place, the backup goes on');
        return;
      }
      throw err;
    };
    for (const archiveKey of await this.redis.smembers(this.key)) {
      // Another destination's leftover stays remembered until a backup goes there again.
      if (!parseBackupKey(bucket.destination.prefix, archiveKey)) continue;
      try {
        this.lockedLeftover(bucket, archiveKey, await bucket.discard(archiveKey));
        await this.redis.srem(this.key, archiveKey);
        removed.push(archiveKey);
      } catch (err) {
        refused(archiveKey, err);
      }
    }
    // Backups run one at a time, so any incomplete upload of ours is a leftover.
    try {
      removed.push(...(await bucket.abortIncompleteUploads()));
    } catch (err) {
      refused('incomplete multipart uploads', err);
    }
    if (removed.length > 0) this.log.warn({ keys: removed }, 'removed what failed or interrupted attempts left at the destination');
    return removed;
  }
}
