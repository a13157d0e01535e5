import { z } from 'zod';
import { DEFAULT_QUEUE_PREFIX, type RetryPolicy } from './queues.js';

/** `raw` as a whole number in [min, max] (unset or empty: `fallback`), or what is wrong with it, in words. */
function wholeNumberIn(raw: string | undefined, fallback: number, min: number, max: number): { value: number } | { problem: string } {
  if (raw === undefined || raw === '') return { value: fallback };
  const value = Number(raw);
  if (Number.isInteger(value) && value >= min && value <= max) return { value };
  return { problem: `must be a whole number from ${min} to ${max}, got "${raw}"` };
}

/** Reads a whole-number setting from the environment; a bad value is refused with the variable's name. */
export function integerSetting(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const read = wholeNumberIn(env[name], fallback, min, max);
  if ('problem' in read) throw new Error(`${name} ${read.problem}`);
  return read.value;
}

/** Reads a true/false setting from the environment; anything else is refused with the variable's name. */
export function booleanSetting(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error(`${name} must be true or false, got "${raw}"`);
}

/** Reads a setting that is one of `choices`; anything else is refused with the variable's name and the choices. */
export function choiceSetting<T extends string>(env: NodeJS.ProcessEnv, name: string, choices: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  throw new Error(`${name} must be one of ${choices.join(', ')}, got "${raw.slice(0, 80)}"`);
}

/** The settings both the api and the worker read, parsed and validated once, by SharedSettingsSchema. */
export interface SharedSettings {
  /** REDIS_URL: where the queues, the lease and the heartbeats live. */
  redisUrl: string;
  /** CHANGO_QUEUE_PREFIX: every key of this cluster lives under it (clusters and tests sharing a Redis stay apart). */
  queuePrefix: string;
  /** CHANGO_BACKUP_ATTEMPTS, CHANGO_BACKUP_BACKOFF_MS: how a failed backup or drill is retried, wherever it was queued. */
  retry: RetryPolicy;
}

export const SHARED_SETTING_DEFAULTS = {
  redisUrl: 'redis://127.0.0.1:6379',
  queuePrefix: DEFAULT_QUEUE_PREFIX,
  retry: { attempts: 3, backoffMs: 10_000 },
} as const;

/** An environment variable that holds a whole number in [min, max]; unset or empty gives `fallback` (the rule of integerSetting). */
function wholeNumber(fallback: number, min: number, max: number) {
  return z
    .string()
    .optional()
    .transform((raw, ctx) => {
      const read = wholeNumberIn(raw, fallback, min, max);
      if ('value' in read) return read.value;
      ctx.addIssue({ code: 'custom', message: read.problem });
      return z.NEVER;
    });
}

/** A text variable; unset or empty gives `fallback`. */
const text = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((raw) => raw || fallback);

export const SharedSettingsSchema = z
  .object({
    REDIS_URL: text(SHARED_SETTING_DEFAULTS.redisUrl),
    CHANGO_QUEUE_PREFIX: text(SHARED_SETTING_DEFAULTS.queuePrefix),
    CHANGO_BACKUP_ATTEMPTS: wholeNumber(SHARED_SETTING_DEFAULTS.retry.attempts, 1, 20),
    CHANGO_BACKUP_BACKOFF_MS: wholeNumber(SHARED_SETTING_DEFAULTS.retry.backoffMs, 10, 3_600_000),
  })
  .transform(
    (env): SharedSettings => ({
      redisUrl: env.REDIS_URL,
      queuePrefix: env.CHANGO_QUEUE_PREFIX,
      retry: { attempts: env.CHANGO_BACKUP_ATTEMPTS, backoffMs: env.CHANGO_BACKUP_BACKOFF_MS },
    }),
  );

/** Reads the shared settings; a bad value stops the start with the variable's name and what it must be. */
export function readSharedSettings(env: NodeJS.ProcessEnv): SharedSettings {
  const parsed = SharedSettingsSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  throw new Error(parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`).join('; '));
}
