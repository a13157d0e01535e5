/** What one run of one chaos case found: the row of the table and the reasons behind it. */

export interface Check {
  name: string;
  ok: boolean;
  /** What was seen, in words (secrets redacted). */
  detail: string;
}

export interface CaseRecord {
  name: string;
  kind: string;
  repeat: number;
  /** The fault as it landed: what, where (phase, bytes), when. */
  fault: string;
  /** Set when the case could not run here (e.g. "needs root"); no checks then. */
  skipped?: string;
  /** Final state of the faulted job: completed/failed + message, or what it was when the bound ran out. */
  outcome: string;
  /** From the fault to the faulted job's final state. */
  secondsToFinal: number | null;
  /** Jobs active or waiting at the end (must be 0). */
  activeJobs: number | null;
  /** Archives without sidecar, sidecars without archive, incomplete multipart uploads (must be 0). */
  leftovers: number | null;
  contradictions: string[];
  restores: { ok: number; total: number };
  checks: Check[];
  /** Measurements worth keeping that are no check (e.g. how long a SIGTERM exit took). */
  notes: string[];
  /** Where the processes' output was saved. */
  logs?: string;
  seconds: number;
}

export type Verdict = 'PASS' | 'FAIL' | 'SKIP';

export function newRecord(name: string, kind: string, repeat: number): CaseRecord {
  return { name, kind, repeat, fault: '(not fired)', outcome: '-', secondsToFinal: null, activeJobs: null, leftovers: null, contradictions: [], restores: { ok: 0, total: 0 }, checks: [], notes: [], seconds: 0 };
}

export function check(record: CaseRecord, name: string, ok: boolean, detail: string): boolean {
  record.checks.push({ name, ok, detail });
  return ok;
}

export function verdict(record: CaseRecord): Verdict {
  if (record.skipped) return 'SKIP';
  return record.checks.length > 0 && record.checks.every((c) => c.ok) ? 'PASS' : 'FAIL';
}

export function failedChecks(record: CaseRecord): { name: string; detail: string }[] {
  return record.checks.filter((c) => !c.ok);
}
