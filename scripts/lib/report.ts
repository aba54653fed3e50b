/** How the bench and the soak report: progress lines, aligned tables, the machine the figures come from. */
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** A progress line, prefixed with the seconds since the script started. */
const started = Date.now();
export function say(line: string): void {
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
}

/** Aligns `rows` (the first is the header) into columns: those in `left` left-aligned, the others right. */
export function formatTable(rows: string[][], left: number[] = [0]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (left.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return (
    [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n') +
    '\n'
  );
}

/** The machine the figures come from (for reports). */
export function machineInfo(): {
  nproc: number;
  cpu: string;
  memory_gb: number;
  node: string;
  load_average: number[];
} {
  const cpu =
    /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ??
    os.cpus()[0]?.model ??
    'unknown';
  return {
    nproc: os.availableParallelism(),
    cpu,
    memory_gb: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    load_average: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}
