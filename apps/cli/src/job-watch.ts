import { Presets, SingleBar } from 'cli-progress';
import type { BackupProgress } from '@chango/contracts';
import { formatBytes } from '@chango/telemetry';
import { EXIT, ExitError, type ApiClient } from './api-client.js';

/** A job as GET /admin/api/backup/jobs/{id} shows it (the fields the CLI reads). */
export interface WatchedJob {
  id: string;
  kind: string;
  state: string;
  progress: BackupProgress | null;
  result: Record<string, unknown> | null;
  failure: { message: string } | null;
}

/** How often a waiting command asks for the job. */
const POLL_MS = 500;

/** How --wait shows a job going: a live bar on a terminal, a line per phase in a pipe, nothing with --json (the end is the JSON). */
export type WatchStyle = 'bar' | 'lines' | 'quiet';

export function watchStyle(json: boolean): WatchStyle {
  if (json) return 'quiet';
  return process.stderr.isTTY ? 'bar' : 'lines';
}

/**
 * Asks for the job every POLL_MS until it is completed or failed, showing its
 * progress on stderr. Bounded: a job whose view has not changed for
 * `stallMs` (the worker gone and nobody taking it over) ends the wait with
 * EXIT.api — a job the worker runs always moves or ends within its deadline.
 */
export async function watchJob(api: ApiClient, jobId: string, style: WatchStyle, stallMs: number): Promise<WatchedJob> {
  const show = style === 'bar' ? new BarDisplay() : style === 'lines' ? new LineDisplay() : undefined;
  let last = '';
  let changedAt = Date.now();
  try {
    for (;;) {
      const answer = await api.call<WatchedJob>('GET', `/admin/api/backup/jobs/${encodeURIComponent(jobId)}`);
      if (answer.status === 404) throw new ExitError(EXIT.failed, `job ${jobId} is unknown to the api (it may have expired from the history)`);
      if (answer.status !== 200) throw new ExitError(EXIT.api, `GET job ${jobId} answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`);
      const job = answer.body;
      show?.update(job);
      if (job.state === 'completed' || job.state === 'failed') return job;
      const seen = JSON.stringify([job.state, job.progress]);
      if (seen !== last) {
        last = seen;
        changedAt = Date.now();
      } else if (Date.now() - changedAt > stallMs) {
        throw new ExitError(EXIT.api, `job ${jobId} has shown no progress for ${Math.round(stallMs / 1000)} s (still ${job.state}${job.progress ? ` in ${job.progress.phase}` : ''}): is a worker leading? (see \`chango-backup backup status\`)`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    show?.stop();
  }
}

/** The live bar (cli-progress): phase, bytes of the phase, rate. */
class BarDisplay {
  private readonly bar = new SingleBar({ format: '{phase} |{bar}| {percentage}% {done} of {expected} {rate}', hideCursor: true, stream: process.stderr, barsize: 30 }, Presets.shades_classic);
  private started = false;
  private phase = '';
  private phaseStart = { at: Date.now(), bytes: 0 };

  update(job: WatchedJob): void {
    const progress = job.progress;
    const phase = progress?.phase ?? job.state;
    const done = progress?.bytesDone ?? 0;
    const expected = progress?.bytesExpected ?? 0;
    if (phase !== this.phase) {
      this.phase = phase;
      this.phaseStart = { at: Date.now(), bytes: done };
    }
    const seconds = (Date.now() - this.phaseStart.at) / 1000;
    const rate = seconds > 0.5 && done > this.phaseStart.bytes ? `${formatBytes((done - this.phaseStart.bytes) / seconds)}/s` : '';
    const payload = { phase: phase.padEnd(10), done: formatBytes(done), expected: expected ? formatBytes(expected) : '?', rate };
    if (!this.started) {
      this.bar.start(Math.max(expected, 1), Math.min(done, Math.max(expected, 1)), payload);
      this.started = true;
    } else {
      this.bar.setTotal(Math.max(expected, 1));
      this.bar.update(Math.min(done, Math.max(expected, 1)), payload);
    }
  }

  stop(): void {
    if (this.started) this.bar.stop();
  }
}

/** One plain line per phase (a pipe, a log): `phase upload: 5.0 MiB of 12.3 MiB`. */
class LineDisplay {
  private phase = '';

  update(job: WatchedJob): void {
    const phase = job.progress?.phase ?? job.state;
    if (phase === this.phase) return;
    this.phase = phase;
    const { bytesDone, bytesExpected } = job.progress ?? { bytesDone: 0, bytesExpected: null };
    process.stderr.write(`phase ${phase}${bytesExpected ? `: ${formatBytes(bytesDone)} of ${formatBytes(bytesExpected)}` : ''}\n`);
  }

  stop(): void {}
}
