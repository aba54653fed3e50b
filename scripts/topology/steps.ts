/**
 * The run's checklist: each step is timed and recorded PASS or FAIL, so the report says which part
 * of the stack broke and how long every part took, even when a later step never ran.
 */
import { formatTable, say } from '../lib/report';

/** One step as the report shows it. */
export interface StepResult {
  name: string;
  ok: boolean;
  ms: number;
  detail: string;
}

/** Runs steps in order and keeps their results. */
export class Steps {
  readonly results: StepResult[] = [];

  /**
   * Runs `fn` as step `name`; the report's detail is `detail(value)`, or the value itself when it is
   * a string. A step that throws is recorded FAIL with the error's first line and the error is
   * rethrown: later steps depend on this one.
   */
  async run<T>(name: string, fn: () => Promise<T>, detail?: (value: T) => string): Promise<T> {
    say(`▶ ${name}`);
    const started = Date.now();
    try {
      const value = await fn();
      const text = detail ? detail(value) : typeof value === 'string' ? value : '';
      this.results.push({ name, ok: true, ms: Date.now() - started, detail: text });
      say(`✔ ${name} (${seconds(Date.now() - started)})${text ? `: ${text}` : ''}`);
      return value;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.results.push({ name, ok: false, ms: Date.now() - started, detail: message.split('\n')[0]! });
      say(`✘ ${name} (${seconds(Date.now() - started)}): ${message}`);
      throw err;
    }
  }

  /** True when at least one step ran and none failed. */
  passed(): boolean {
    return this.results.length > 0 && this.results.every((r) => r.ok);
  }

  /** The results as an aligned table. */
  table(): string {
    return formatTable(
      [
        ['step', 'result', 'time', 'detail'],
        ...this.results.map((r) => [r.name, r.ok ? 'PASS' : 'FAIL', seconds(r.ms), r.detail]),
      ],
      [0, 1, 3],
    );
  }
}

/** Milliseconds as seconds with one decimal. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
