/** Deploy freeze windows: absolute and cron (croner, IANA zones), their ends, and the policy's shape. */
import {
  activeFreeze,
  deployFreezeConfig,
  freezeViolation,
  type DeployFreezeConfig,
} from '../../src/domain/freezes';

const at = (iso: string) => new Date(iso);

describe('activeFreeze', () => {
  const absolute: DeployFreezeConfig = {
    tiers: ['prod'],
    windows: [{ name: 'year-end', start: '2026-12-24T00:00:00Z', end: '2027-01-02T00:00:00Z' }],
  };

  it('freezes the named tiers inside an absolute window, until its end', () => {
    expect(activeFreeze(absolute, 'prod', at('2026-12-25T12:00:00Z'))).toEqual({
      window: 'year-end',
      until: at('2027-01-02T00:00:00Z'),
    });
    expect(activeFreeze(absolute, 'prod', at('2026-12-24T00:00:00Z'))?.window).toBe('year-end');
  });

  it('does not freeze before or at the end of the window, nor another tier', () => {
    expect(activeFreeze(absolute, 'prod', at('2026-12-23T23:59:59Z'))).toBeNull();
    expect(activeFreeze(absolute, 'prod', at('2027-01-02T00:00:00Z'))).toBeNull();
    expect(activeFreeze(absolute, 'staging', at('2026-12-25T12:00:00Z'))).toBeNull();
    expect(activeFreeze(null, 'prod', at('2026-12-25T12:00:00Z'))).toBeNull();
  });

  // Fridays from 16:00 for 64 hours, New York time: 21:00 UTC in December (EST, UTC-5).
  const weekend: DeployFreezeConfig = {
    tiers: ['prod', 'staging'],
    windows: [{ name: 'weekend', cron: '0 16 * * 5', duration: '64h', timezone: 'America/New_York' }],
  };

  it('reads a cron window in its own time zone', () => {
    // Friday 2026-12-04 16:00 in New York is 21:00 UTC.
    expect(activeFreeze(weekend, 'prod', at('2026-12-04T20:59:59Z'))).toBeNull();
    expect(activeFreeze(weekend, 'prod', at('2026-12-04T21:00:00Z'))).toEqual({
      window: 'weekend',
      until: at('2026-12-07T13:00:00Z'),
    });
    expect(activeFreeze(weekend, 'staging', at('2026-12-06T10:00:00Z'))?.until).toEqual(
      at('2026-12-07T13:00:00Z'),
    );
    expect(activeFreeze(weekend, 'prod', at('2026-12-07T13:00:00Z'))).toBeNull();
  });

  it('follows occurrences that begin before the one in force ends', () => {
    // Every hour, lasting 90 minutes: once in, the freeze never ends before the last one.
    const chained: DeployFreezeConfig = {
      tiers: ['prod'],
      windows: [{ name: 'busy', cron: '0 * * * *', duration: '90m', timezone: 'UTC' }],
    };
    const freeze = activeFreeze(chained, 'prod', at('2026-12-03T10:15:00Z'));
    expect(freeze?.window).toBe('busy');
    // Bounded: the chain is followed a limited number of occurrences, far in the future.
    expect(freeze!.until.getTime()).toBeGreaterThan(at('2026-12-10T00:00:00Z').getTime());
  });

  it('answers the window that ends last when several are in force', () => {
    const both: DeployFreezeConfig = {
      tiers: ['prod'],
      windows: [
        { name: 'short', start: '2026-12-01T00:00:00Z', end: '2026-12-02T00:00:00Z' },
        { name: 'long', start: '2026-12-01T00:00:00Z', end: '2026-12-05T00:00:00Z' },
      ],
    };
    expect(activeFreeze(both, 'prod', at('2026-12-01T12:00:00Z'))?.window).toBe('long');
  });
});

describe('freezeViolation', () => {
  it('names the window and its end as an ISO-8601 UTC time', () => {
    expect(freezeViolation('prod', { window: 'year-end', until: at('2027-01-02T00:00:00Z') })).toMatchObject({
      rule: 'deploy_freeze',
      message: "tier 'prod' is frozen by window 'year-end' until 2027-01-02T00:00:00.000Z",
    });
  });
});

describe('the deploy_freeze policy config', () => {
  it.each([
    ['a 6-field cron', { name: 'x', cron: '0 0 9 * * *', duration: '1h', timezone: 'UTC' }],
    ['a bad cron', { name: 'x', cron: 'every friday', duration: '1h', timezone: 'UTC' }],
    ['an unknown zone', { name: 'x', cron: '0 9 * * *', duration: '1h', timezone: 'Mars/Olympus' }],
    ['a duration below a second', { name: 'x', cron: '0 9 * * *', duration: '10ms', timezone: 'UTC' }],
    ['an end before the start', { name: 'x', start: '2026-12-02T00:00:00Z', end: '2026-12-01T00:00:00Z' }],
    ['a date without a zone', { name: 'x', start: '2026-12-01T00:00:00', end: '2026-12-02T00:00:00Z' }],
  ])('refuses %s', (_what, window) => {
    expect(deployFreezeConfig.safeParse({ tiers: ['prod'], windows: [window] }).success).toBe(false);
  });

  it('takes both kinds of window and exempt_rollbacks', () => {
    expect(
      deployFreezeConfig.safeParse({
        tiers: ['prod'],
        exempt_rollbacks: true,
        windows: [
          { name: 'a', start: '2026-12-01T00:00:00Z', end: '2026-12-02T00:00:00+01:00' },
          { name: 'b', cron: '30 17 * * 1-5', duration: '15h', timezone: 'Europe/Berlin' },
        ],
      }).success,
    ).toBe(true);
  });
});
