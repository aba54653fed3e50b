/** Durations in policies and targets: `"30m"`, `"24h"`, `"7d"`, `"1500ms"` or whole seconds, from 1 s to a year. */
import { z } from 'zod';

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };
const DURATION = /^(\d{1,7})(ms|s|m|h|d)$/;
// A year: the deployment row keeps the approval timeout in an int column, and no approval waits longer.
const MAX_DURATION_SECONDS = 31_536_000;

/** The seconds a duration spells, unrounded, or null when it is not one (`"1.5h"`, `1.5`, `"24H"`). */
function spelledSeconds(value: string | number): number | null {
  if (typeof value === 'number') return Number.isInteger(value) ? value : null;
  const m = DURATION.exec(value);
  return m ? Number(m[1]) * UNIT_SECONDS[m[2]!]! : null;
}

const inDurationRange = (seconds: number | null): seconds is number =>
  seconds !== null && seconds >= 1 && seconds <= MAX_DURATION_SECONDS;

/**
 * A policy duration: `"30m"`, `"24h"`, `"7d"`, `"1500ms"` or whole seconds, from 1 s to a year. Below
 * a second is refused rather than rounded up (`"0s"` used to become 1 s without a word).
 */
export const policyDuration = z
  .union([z.string(), z.number()])
  .refine((v) => inDurationRange(spelledSeconds(v)), {
    message: 'not a duration from 1 s to a year',
    params: {
      hint: 'give digits and a unit (ms, s, m, h, d), e.g. "30m", "24h", "7d", "1000ms", or whole seconds from 1 to 31536000',
    },
  });

/** Turns a policy duration (see {@link policyDuration}) into whole seconds; throws for anything else. */
export function durationSeconds(value: string | number): number {
  const seconds = spelledSeconds(value);
  if (!inDurationRange(seconds)) throw new Error(`not a duration between 1 s and a year: ${value}`);
  return Math.round(seconds);
}
