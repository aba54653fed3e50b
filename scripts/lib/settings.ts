/** An integer setting from the environment (`BENCH_*`, `SOAK_*`), or `fallback`; a bad value stops the script. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`${name} must be a non-negative integer, not '${raw}'`);
  return value;
}
