/**
 * Memory and CPU of the platform's processes, read from /proc (Linux), for the bench and the soak.
 */
import { readFileSync } from 'node:fs';

/** Resident memory of `pid` in MB (VmRSS), or undefined once it has exited. */
export function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

// USER_HZ: 100 on every Linux build this runs on (`getconf CLK_TCK`).
const CLOCK_TICKS = 100;

/** CPU time (user + system, ms) `pid` has used so far, or 0 once it has exited. */
export function cpuMs(pid: number): number {
  try {
    // Fields after the command name (which may contain spaces, hence the last ')'): utime is the 12th, stime the 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** The process to sample (a `Child` of ./spawn.ts), or undefined while there is none. */
export type SampleTarget = () => { pid: number; running(): boolean } | undefined;

/**
 * Samples the resident memory of named processes every `everyMs` and keeps the peak of each per
 * phase, so "idle" and "under load" figures come from the same run.
 */
export class RssSampler {
  private readonly peaks = new Map<string, Map<string, number>>();
  private readonly timer: NodeJS.Timeout;
  private phase = 'start';

  constructor(
    private readonly targets: Record<string, SampleTarget>,
    everyMs = 200,
  ) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  /** Starts a new phase: later samples count towards `name`. */
  begin(name: string): void {
    this.phase = name;
    this.sample();
  }

  /** Every phase's peaks: `{ phase: { target: MB } }`. */
  all(): Record<string, Record<string, number>> {
    return Object.fromEntries(
      [...this.peaks].map(([phase, m]) => [
        phase,
        Object.fromEntries([...m].map(([k, v]) => [k, Math.round(v * 10) / 10])),
      ]),
    );
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    const bucket = this.peaks.get(this.phase) ?? new Map<string, number>();
    this.peaks.set(this.phase, bucket);
    for (const [name, target] of Object.entries(this.targets)) {
      const child = target();
      const mb = child?.running() ? rssMb(child.pid) : undefined;
      if (mb !== undefined) bucket.set(name, Math.max(bucket.get(name) ?? 0, mb));
    }
  }
}
