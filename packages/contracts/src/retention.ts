export interface RetentionPolicy {
  keepLast?: number | undefined;
  maxAgeDays?: number | undefined;
  keepAll?: true | undefined;
}

/**
 * What a destination saved without a retention rule gets: the 30 newest
 * backups (Consul's snapshot agent keeps 30 by default), plus the newest one
 * that passed a restore drill. A destination must not grow forever because
 * nobody chose; keeping everything is a choice (`{keepAll: true}`).
 */
export const DEFAULT_RETENTION: RetentionPolicy = Object.freeze({ keepLast: 30 });

/** The rule that applies to a destination, and whether it was chosen or is the default. */
export interface AppliedRetention {
  rule: RetentionPolicy;
  source: 'configured' | 'default';
  /** In words, for status and the UI: "keep the 30 newest (default)". */
  words: string;
}

export function appliedRetention(configured: RetentionPolicy | null | undefined): AppliedRetention {
  const chosen = configured && (configured.keepAll || configured.keepLast !== undefined || configured.maxAgeDays !== undefined);
  const rule = chosen ? configured : DEFAULT_RETENTION;
  const source = chosen ? 'configured' : 'default';
  return { rule, source, words: `${describeRetention(rule)}${source === 'default' ? ' (default)' : ''}` };
}

export function describeRetention(rule: RetentionPolicy): string {
  if (rule.keepAll) return 'keep every backup';
  const parts: string[] = [];
  if (rule.keepLast !== undefined) parts.push(`the ${rule.keepLast} newest`);
  if (rule.maxAgeDays !== undefined) parts.push(`those younger than ${rule.maxAgeDays} days`);
  return parts.length > 0 ? `keep ${parts.join(' and ')}, and the newest that passed a drill` : 'keep every backup';
}
