/** The benchmark's report: each figure beside its baseline (a ratio) or an absolute limit, with its target. */

/** One line of the report. */
export interface Figure {
  figure: string;
  unit: string;
  value: number;
  baseline: number | null;
  ratio: number | null;
  /** e.g. `>= 0.7`; null for figures reported without a target. */
  target: string | null;
  pass: boolean | null;
}

/** Every figure of the run, in order. */
export const figures: Figure[] = [];
/** Raw measurements behind the figures, written to the JSON report. */
export const details: Record<string, unknown> = {};

export const round = (n: number): number => Math.round(n * 100) / 100;

/**
 * Adds a figure. With a baseline the target applies to the ratio value ÷ baseline; with
 * `absolute`, to the value itself (e.g. a memory ceiling in MB).
 */
export function figure(
  name: string,
  unit: string,
  value: number,
  baseline: number | null,
  target: { op: '>=' | '<='; limit: number; absolute?: boolean } | null,
): void {
  const ratio = baseline ? Math.round((value / baseline) * 100) / 100 : null;
  const measured = target?.absolute ? value : ratio;
  const pass =
    target && measured !== null
      ? target.op === '>='
        ? measured >= target.limit
        : measured <= target.limit
      : null;
  figures.push({
    figure: name,
    unit,
    value: round(value),
    baseline: baseline === null ? null : round(baseline),
    ratio,
    target: target
      ? `${target.absolute ? 'value ' : ''}${target.op} ${target.limit}${target.absolute ? ` ${unit}` : ''}`
      : null,
    pass,
  });
}

/** The p-th percentile (nearest rank) of `xs`. */
export function pct(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}
