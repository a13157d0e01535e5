/**
 * What a chaos case is, and how one run of it is wrapped: a fresh cleanup scope, a record, the
 * processes' output saved (redacted) whatever happens, every cleanup run (a tmpfs unmounted, the
 * processes stopped) even when the case blew up — and a case that blew up is a failing row with
 * the reason, never a crash of the runner.
 */
import type { World } from './harness.js';
import { check, newRecord, type CaseRecord } from './record.js';
import { Redactor } from './redact.js';
import { CaseScope } from './scope.js';

export type CaseKind = 'kill -9' | 'SIGTERM' | 'Redis down' | 'S3 fault' | 'small work dir';

export interface CaseContext {
  scope: CaseScope;
  record: CaseRecord;
  redactor: Redactor;
  /** Set by World.create: its logs are saved when the case ends. */
  world?: World;
  log(message: string): void;
}

export interface ChaosCase {
  name: string;
  kind: CaseKind;
  /** One sentence: the fault and where it lands. */
  summary: string;
  /** In the --quick subset (one case of each kind). */
  quick?: boolean;
  /** Writes far more to the destination than the others (a fresh RGW before it, see rgw-hold.ts). */
  heavy?: boolean;
  /** Its fault does not depend on timing (it is a state, not a moment): run once whatever --repeat says. */
  once?: boolean;
  run(ctx: CaseContext): Promise<void>;
}

/** Scopes of the case runs under way: an interrupted runner (Ctrl-C, SIGTERM) still runs their cleanups. */
const running = new Set<CaseScope>();

/** Runs the cleanups of every case under way (unmount, stop processes, remove folders); for a runner that is interrupted. */
export async function cleanUpRunningCases(): Promise<void> {
  await Promise.all([...running].map((scope) => scope.run()));
}

export async function runCase(def: ChaosCase, repeat: number, log: (message: string) => void = () => undefined): Promise<CaseRecord> {
  const record = newRecord(def.name, def.kind, repeat);
  const redactor = new Redactor();
  const scope = new CaseScope();
  const ctx: CaseContext = { scope, record, redactor, log: (m) => log(redactor.redact(`[${def.name} #${repeat}] ${m}`)) };
  const started = Date.now();
  running.add(scope);
  try {
    await def.run(ctx);
  } catch (err) {
    check(record, 'the case ran to its end', false, redactor.redact((err as Error).stack ?? String(err)).split('\n').slice(0, 4).join(' | '));
  } finally {
    if (ctx.world) record.logs = await ctx.world.saveLogs(`${def.name}-${repeat}`).catch(() => undefined);
    const problems = await scope.run();
    running.delete(scope);
    if (problems.length > 0) check(record, 'cleanup', false, redactor.redact(problems.join('; ')));
    record.seconds = Math.round((Date.now() - started) / 1000);
  }
  return record;
}
