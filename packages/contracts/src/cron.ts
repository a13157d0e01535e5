import { CronExpressionParser } from 'cron-parser';

/**
 * Schedules are cron expressions, read by cron-parser — the library BullMQ's
 * job scheduler fires them with, so what we accept is what runs.
 */

/**
 * Seconds between two runs of a schedule (from its next two fire times): what
 * "no successful backup within N × the schedule interval" alerts measure
 * against. Undefined for an expression that does not parse.
 */
export function scheduleIntervalSeconds(expression: string, timezone: string, from: Date = new Date()): number | undefined {
  try {
    const fires = CronExpressionParser.parse(expression, { tz: timezone, currentDate: from });
    const first = fires.next().getTime();
    return (fires.next().getTime() - first) / 1000;
  } catch {
    return undefined;
  }
}

/** The reason `expression` is not a schedule we accept, or undefined. */
export function cronProblem(expression: string): string | undefined {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    return `must be a cron expression of 5 fields (minute hour day month weekday) or 6 with leading seconds; got ${fields.length}`;
  }
  try {
    CronExpressionParser.parse(expression, { tz: 'UTC' }).next();
    return undefined;
  } catch (err) {
    return `is not a valid cron expression: ${(err as Error).message}`;
  }
}
