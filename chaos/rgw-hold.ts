/**
 * Keeps one Ceph RGW test cluster up across chaos cases (testkit/local-rgw.ts shares a running
 * cluster with every startRgw() in the process while someone holds it), recycled every
 * RECYCLE_RUNS case runs: its in-memory store (1 GiB) fills with archives — deleted ones too,
 * until RGW's garbage collector gets to them — and a full RGW stalls uploads rather than failing
 * them, which would read as a service failure.
 */
import { startRgw, type RgwCluster } from '../testkit/local-rgw.js';

/** ≈ 60 MiB per run (two or three 15 MiB archives, parts of aborted uploads); the small-work-dir case writes ≈ 200 MiB. */
const RECYCLE_RUNS = 6;

export class RgwHold {
  private held: RgwCluster | undefined;
  private runs = 0;

  /** Call before each case run: starts (or recycles) the cluster the case's startRgw() will share. */
  async beforeRun(heavy = false): Promise<void> {
    if (this.held && (this.runs >= RECYCLE_RUNS || heavy)) await this.release();
    this.held ??= await startRgw();
    this.runs += heavy ? RECYCLE_RUNS : 1;
  }

  async release(): Promise<void> {
    const held = this.held;
    this.held = undefined;
    this.runs = 0;
    await held?.stop();
  }
}
