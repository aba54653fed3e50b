/**
 * Deploy freezes: the `deploy_freeze` policy's windows, absolute (`start`/`end`) or recurring (a
 * 5-field cron expression in an IANA time zone, each occurrence lasting `duration`), and whether a
 * tier is frozen at a moment — with the window's name and when the freeze ends. Cron expressions
 * are read by `croner` (a maintained library), never by a hand-written parser.
 */
import { Cron } from 'croner';
import { z } from 'zod';
import { durationSeconds, policyDuration } from './durations';

const isoInstant = z.iso.datetime({ offset: true });

/** A valid IANA time zone name (as Intl knows them). */
const timeZone = z.string().refine(
  (tz) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not an IANA time zone', params: { hint: 'e.g. "Europe/Berlin", "America/New_York", "UTC"' } },
);

/** A 5-field cron expression croner accepts. */
const cronExpression = z.string().refine(
  (expr) => {
    try {
      new Cron(expr, { paused: true, mode: '5-part' });
      return true;
    } catch {
      return false;
    }
  },
  {
    message: 'not a 5-field cron expression',
    params: { hint: 'minute hour day-of-month month day-of-week, e.g. "0 18 * * 5"' },
  },
);

const absoluteWindow = z
  .strictObject({ name: z.string().min(1).max(100), start: isoInstant, end: isoInstant })
  .refine((w) => Date.parse(w.end) > Date.parse(w.start), {
    message: 'end must come after start',
    path: ['end'],
  });

const cronWindow = z.strictObject({
  name: z.string().min(1).max(100),
  cron: cronExpression,
  duration: policyDuration,
  timezone: timeZone,
});

/** A freeze window. */
export const freezeWindow = z.union([absoluteWindow, cronWindow]);
export type FreezeWindow = z.infer<typeof freezeWindow>;

/** The `deploy_freeze` policy's config. */
export const deployFreezeConfig = z.strictObject({
  windows: z.array(freezeWindow).max(100),
  tiers: z.array(z.string().min(1).max(63)).max(10),
  exempt_rollbacks: z.boolean().optional(),
});
export type DeployFreezeConfig = z.infer<typeof deployFreezeConfig>;

/** A freeze in force: which window, and when it ends. */
export interface ActiveFreeze {
  window: string;
  until: Date;
}

/** The end of a cron window covering `at`, following occurrences that start before it ends; null when none covers `at`. */
function cronFreezeEnd(w: z.infer<typeof cronWindow>, at: Date): Date | null {
  const cron = new Cron(w.cron, { paused: true, mode: '5-part', timezone: w.timezone });
  const lastMs = durationSeconds(w.duration) * 1000;
  // An occurrence covers `at` when it started after `at - duration` and at or before `at`.
  const first = cron.nextRun(new Date(at.getTime() - lastMs));
  if (!first || first.getTime() > at.getTime()) return null;
  let end = first.getTime() + lastMs;
  // Occurrences that begin before this one ends extend the freeze (bounded: a window cannot chain forever).
  for (let i = 0, next = cron.nextRun(first); next && next.getTime() < end && i < 10_000; i++) {
    end = Math.max(end, next.getTime() + lastMs);
    next = cron.nextRun(next);
  }
  return new Date(end);
}

/** The window of `config` that freezes `tier` at `at` (the one ending last, when several do), or null. */
export function activeFreeze(config: DeployFreezeConfig | null, tier: string, at: Date): ActiveFreeze | null {
  if (!config || !config.tiers.includes(tier)) return null;
  let found: ActiveFreeze | null = null;
  for (const w of config.windows) {
    const until =
      'cron' in w
        ? cronFreezeEnd(w, at)
        : Date.parse(w.start) <= at.getTime() && at.getTime() < Date.parse(w.end)
          ? new Date(w.end)
          : null;
    if (until && (!found || until > found.until)) found = { window: w.name, until };
  }
  return found;
}

/** The violation of a trigger into a frozen tier. */
export function freezeViolation(tier: string, freeze: ActiveFreeze) {
  return {
    rule: 'deploy_freeze',
    field: 'tier',
    message: `tier '${tier}' is frozen by window '${freeze.window}' until ${freeze.until.toISOString()}`,
    hint: 'wait until the window ends; a PLATFORM_ADMIN may break glass with "freeze_override": {"reason": "…"}',
  };
}

/**
 * The freeze that holds a deployment of `kind` into `tier` at `at`: none for a rollback when the
 * policy exempts rollbacks.
 */
export function freezeHolding(
  config: DeployFreezeConfig | null,
  tier: string,
  kind: 'deploy' | 'rollback',
  at: Date,
): ActiveFreeze | null {
  if (kind === 'rollback' && config?.exempt_rollbacks) return null;
  return activeFreeze(config, tier, at);
}
