import { readFileSync } from 'node:fs';
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
  /** REDIS_URL: where the queues, the lease and the heartbeats live (not used when `sentinel` is set). */
  redisUrl: string;
  /** REDIS_SENTINELS, REDIS_SENTINEL_MASTER, REDIS_SENTINEL_PASSWORD_FILE: the master is found through Redis Sentinel. Absent: REDIS_URL. */
  sentinel?: SentinelSettings;
  /** REDIS_PASSWORD_FILE: the password of the Redis servers (AUTH), read from the file. Absent: none, or the one in REDIS_URL. */
  redisPassword?: string;
  /** CHANGO_QUEUE_PREFIX: every key of this cluster lives under it (clusters and tests sharing a Redis stay apart). */
  queuePrefix: string;
  /** CHANGO_BACKUP_ATTEMPTS, CHANGO_BACKUP_BACKOFF_MS: how a failed backup or drill is retried, wherever it was queued. */
  retry: RetryPolicy;
}

export interface SentinelSettings {
  sentinels: { host: string; port: number }[];
  masterName: string;
  /** The sentinels' own password (their requirepass), if they have one. */
  sentinelPassword?: string;
}

/**
 * What ioredis (and BullMQ's `connection`) is given to reach our Redis: the URL, or the sentinels and
 * the master's name. Every connection of the api and the worker is made from this (plus its own
 * options, such as maxRetriesPerRequest); with sentinels, ioredis asks them for the master and asks
 * again after a failover.
 */
export interface RedisConnectionOptions {
  url?: string;
  sentinels?: { host: string; port: number }[];
  name?: string;
  password?: string;
  sentinelPassword?: string;
}

/** The one place the settings become connection options for ioredis or BullMQ. */
export function redisConnectionOptions(settings: Pick<SharedSettings, 'redisUrl' | 'sentinel' | 'redisPassword'>): RedisConnectionOptions {
  const password = settings.redisPassword !== undefined ? { password: settings.redisPassword } : {};
  if (!settings.sentinel) return { url: settings.redisUrl, ...password };
  const { sentinels, masterName, sentinelPassword } = settings.sentinel;
  return { sentinels: sentinels.map((s) => ({ ...s })), name: masterName, ...password, ...(sentinelPassword !== undefined ? { sentinelPassword } : {}) };
}

/** Our Redis in words, for logs and errors: the sentinels and the master's name, or the URL without its password. Never a password. */
export function describeRedis(settings: Pick<SharedSettings, 'redisUrl' | 'sentinel'>): string {
  if (settings.sentinel) {
    return `Redis master "${settings.sentinel.masterName}" via sentinels ${settings.sentinel.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
  }
  return `Redis at ${redactRedisUrl(settings.redisUrl)}`;
}

/** A Redis URL without its password, for messages. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured Redis';
  }
}

/** REDIS_SENTINELS: host:port,host:port,… (a host may be a name, an IPv4 address or [IPv6]); or what is wrong, in words. */
export function parseSentinels(raw: string): { sentinels: { host: string; port: number }[] } | { problem: string } {
  const sentinels: { host: string; port: number }[] = [];
  for (const item of raw.split(',').map((part) => part.trim())) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(item);
    const port = Number(match?.[2]);
    if (!match || !(port >= 1 && port <= 65_535)) {
      return { problem: `must be a comma-separated list of host:port (port 1 to 65535), got "${item.slice(0, 80)}" in it` };
    }
    sentinels.push({ host: match[1]!.replace(/^\[|\]$/g, ''), port });
  }
  return { sentinels };
}

/** The first line of a secret file; or what is wrong (never its content). */
function secretFromFile(path: string): { value: string } | { problem: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { problem: `names a file that cannot be read: ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  const value = text.split('\n')[0]!.replace(/\r$/, '');
  if (value === '') return { problem: `names a file whose first line is empty: ${path}` };
  return { value };
}

/** An environment variable `read` turns into its value, or refuses in words (the schema's error names the variable). */
function variable<T>(read: (raw: string | undefined) => { value: T } | { problem: string }) {
  return z
    .string()
    .optional()
    .transform((raw, ctx) => {
      const result = read(raw);
      if ('value' in result) return result.value;
      ctx.addIssue({ code: 'custom', message: result.problem });
      return z.NEVER;
    });
}

/** A variable naming a file that holds a secret; unset or empty: no secret. */
const secretFile = () => variable((raw) => (raw ? secretFromFile(raw) : { value: undefined }));

export const SHARED_SETTING_DEFAULTS = {
  redisUrl: 'redis://127.0.0.1:6379',
  queuePrefix: DEFAULT_QUEUE_PREFIX,
  retry: { attempts: 3, backoffMs: 10_000 },
} as const;

/** An environment variable that holds a whole number in [min, max]; unset or empty gives `fallback` (the rule of integerSetting). */
function wholeNumber(fallback: number, min: number, max: number) {
  return variable((raw) => wholeNumberIn(raw, fallback, min, max));
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
    REDIS_SENTINELS: variable((raw) => {
      if (!raw) return { value: undefined };
      const read = parseSentinels(raw);
      return 'sentinels' in read ? { value: read.sentinels } : read;
    }),
    REDIS_SENTINEL_MASTER: z
      .string()
      .optional()
      .refine((raw) => !raw || /^[A-Za-z0-9._-]{1,128}$/.test(raw), { message: 'must be the master\'s name as the sentinels know it (letters, digits, . _ -)' }),
    REDIS_SENTINEL_PASSWORD_FILE: secretFile(),
    REDIS_PASSWORD_FILE: secretFile(),
  })
  .superRefine((env, ctx) => {
    if (env.REDIS_SENTINELS && !env.REDIS_SENTINEL_MASTER) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_SENTINEL_MASTER'], message: 'must be set when REDIS_SENTINELS is: the name of the master the sentinels watch' });
    }
    if (!env.REDIS_SENTINELS && env.REDIS_SENTINEL_MASTER) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_SENTINELS'], message: 'must be set when REDIS_SENTINEL_MASTER is: host:port of the sentinels, comma-separated' });
    }
    if (!env.REDIS_SENTINELS && env.REDIS_SENTINEL_PASSWORD_FILE !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_SENTINELS'], message: 'must be set when REDIS_SENTINEL_PASSWORD_FILE is' });
    }
  })
  .transform(
    (env): SharedSettings => ({
      redisUrl: env.REDIS_URL,
      ...(env.REDIS_SENTINELS && env.REDIS_SENTINEL_MASTER
        ? {
            sentinel: {
              sentinels: env.REDIS_SENTINELS,
              masterName: env.REDIS_SENTINEL_MASTER,
              ...(env.REDIS_SENTINEL_PASSWORD_FILE !== undefined ? { sentinelPassword: env.REDIS_SENTINEL_PASSWORD_FILE } : {}),
            },
          }
        : {}),
      ...(env.REDIS_PASSWORD_FILE !== undefined ? { redisPassword: env.REDIS_PASSWORD_FILE } : {}),
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
