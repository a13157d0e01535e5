import { planRetention } from '@chango/contracts';
import type { BackupBucket } from '@chango/s3';
import type { Logger } from '@chango/telemetry';
import type { LeaderLease } from './leader-lease.js';
import type { RunLedger } from './run-ledger.js';

export interface RetentionContext {
  lease: LeaderLease;
  ledger: RunLedger;
  log: Logger;
  /** The backup just committed: kept whatever the plan says (it is the newest anyway). */
  keep: string;
}

/**
 * Applies the destination's retention after a backup committed (never after
 * one failed: the caller only gets here on success). Lists, plans (pure, see
 * @chango/contracts planRetention), confirms the lease, deletes. A failure
 * here is logged and leaves the new backup standing: returns the deleted keys.
 */
export async function applyRetention(bucket: BackupBucket, ctx: RetentionContext): Promise<string[]> {
  try {
    const plan = planRetention(await bucket.list(), bucket.destination.retention, bucket.destination.prefix, new Date());
    const doomed = plan.remove.filter((decision) => decision.key !== ctx.keep);
    if (doomed.length === 0) return [];
    if (!(await ctx.lease.confirm())) {
      ctx.log.warn({ wouldDelete: doomed.length }, 'retention skipped: this worker is no longer the leader');
      return [];
    }
    await bucket.remove(doomed.map((decision) => decision.key));
    for (const decision of doomed) ctx.log.info({ key: decision.key, reasons: decision.reasons }, 'retention: deleted backup');
    await ctx.ledger.recordRetentionDeletions(doomed.length);
    return doomed.map((decision) => decision.key);
  } catch (err) {
    ctx.log.error({ err: (err as Error).message }, 'retention failed: old backups were left in place (the new one is committed)');
    return [];
  }
}
