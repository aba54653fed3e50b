/** Deploy freezes through the API and a real worker: refusals, break-glass, the wait before rollout, evaluate. */
import { AuditLog } from '../../src/domain/entities';
import {
  admin,
  auth,
  createTeam,
  deploySucceeded,
  promoteToProd,
  serviceWithEnvironments,
  waitForStatus,
} from '../support/fixtures';
import { startStack, tokenFor, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: true });
});
afterAll(async () => {
  await stack.close();
});

/** Freezes `tiers` with `windows` for the duration of `fn` (the seeded policy is disabled). */
async function frozen<T>(
  windows: unknown[],
  tiers: string[],
  fn: () => Promise<T>,
  extra: Record<string, unknown> = {},
) {
  const put = (enabled: boolean, config: unknown) =>
    stack.http
      .put('/api/policies/deploy_freeze')
      .set(auth(admin))
      .send({ kind: 'deploy_freeze', enabled, config });
  expect((await put(true, { windows, tiers, ...extra })).status).toBe(200);
  try {
    return await fn();
  } finally {
    await put(false, { windows: [], tiers: [] });
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
const deployUrl = (s: number, e: number) => `/api/services/${s}/environments/${e}/deployments`;

describe('deploy freezes', () => {
  it('refuse a trigger inside an absolute window with 409 naming the window and its end', async () => {
    const f = await serviceWithEnvironments(stack);
    const end = Date.now() + 3_600_000;
    await frozen(
      [{ name: 'change-freeze', start: iso(Date.now() - 60_000), end: iso(end) }],
      ['dev'],
      async () => {
        const res = await stack.http
          .post(deployUrl(f.service.id, f.envs.dev.id))
          .set(auth(admin))
          .send({ version: '1.0.0' });
        expect(res.status).toBe(409);
        expect(res.body.violations).toEqual([
          expect.objectContaining({
            rule: 'deploy_freeze',
            message: `tier 'dev' is frozen by window 'change-freeze' until ${iso(end)}`,
          }),
        ]);
        expect((await stack.http.get('/api/metrics')).text).toMatch(
          /idp_freeze_refusals_total\{tier="dev"\} [1-9]/,
        );
        const entry = await stack.orm.em.fork().findOne(AuditLog, {
          action: 'deployment.create',
          outcome: 'violation',
          targetId: String(f.envs.dev.id),
        });
        expect(entry?.details).toMatchObject({
          violations: [expect.objectContaining({ rule: 'deploy_freeze' })],
        });
        // The dry run says the same.
        const dry = await stack.http
          .post('/api/policies/evaluate')
          .set(auth(admin))
          .send({
            action: 'deployment.create',
            payload: { version: '1.0.0', service_id: f.service.id, environment_id: f.envs.dev.id },
          });
        expect(dry.body.allowed).toBe(false);
        expect(dry.body.violations.map((v: { rule: string }) => v.rule)).toContain('deploy_freeze');
      },
    );
  });

  it('refuse a trigger inside a cron window in another time zone', async () => {
    const f = await serviceWithEnvironments(stack);
    // Every minute, for an hour, Tokyo time: always in force.
    await frozen(
      [{ name: 'tokyo-maintenance', cron: '* * * * *', duration: '1h', timezone: 'Asia/Tokyo' }],
      ['dev'],
      async () => {
        const res = await stack.http
          .post(deployUrl(f.service.id, f.envs.dev.id))
          .set(auth(admin))
          .send({ version: '1.0.0' });
        expect(res.status).toBe(409);
        expect(res.body.violations[0].message).toMatch(
          /^tier 'dev' is frozen by window 'tokyo-maintenance' until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
        );
      },
    );
  });

  it('let a PLATFORM_ADMIN break glass with freeze_override (202, audited with the reason); anyone else gets 403', async () => {
    const team = await createTeam(stack);
    const f = await serviceWithEnvironments(stack, { team: team.name });
    await frozen(
      [{ name: 'xmas', start: iso(Date.now() - 60_000), end: iso(Date.now() + 3_600_000) }],
      ['dev'],
      async () => {
        const teamAdmin = tokenFor('ta-tim', ['TEAM_ADMIN'], [team.name]);
        const refused = await stack.http
          .post(deployUrl(f.service.id, f.envs.dev.id))
          .set(auth(teamAdmin))
          .send({ version: '1.0.0', freeze_override: { reason: 'hotfix' } });
        expect(refused.status).toBe(403);
        const res = await stack.http
          .post(deployUrl(f.service.id, f.envs.dev.id))
          .set(auth(admin))
          .send({ version: '1.0.0', freeze_override: { reason: 'CVE-2026-1234 hotfix' } });
        expect(res.status).toBe(202);
        expect(res.body.freeze_override).toEqual({ reason: 'CVE-2026-1234 hotfix' });
        // Checked again before the rollout: the override holds there too.
        await waitForStatus(stack, res.body.id, 'succeeded');
        const created = await stack.orm.em.fork().findOneOrFail(AuditLog, {
          action: 'deployment.create',
          targetType: 'deployment',
          targetId: String(res.body.id),
        });
        expect(created.details).toMatchObject({ freeze_override: { reason: 'CVE-2026-1234 hotfix' } });
        const metrics = (await stack.http.get('/api/metrics')).text;
        expect(metrics).toMatch(/idp_freeze_overrides_total\{tier="dev"\} [1-9]/);
      },
    );
  });

  it('make a deployment accepted before the window wait, durably, and roll out once it ends', async () => {
    const f = await serviceWithEnvironments(stack);
    const prodId = await promoteToProd(stack, f, '1.0.0');
    const start = Date.now() + 500;
    const end = start + 5_000;
    await frozen([{ name: 'short', start: iso(start), end: iso(end) }], ['prod'], async () => {
      await new Promise((r) => setTimeout(r, Math.max(0, start - Date.now()) + 200));
      const approve = await stack.http
        .post(`/api/deployments/${prodId}/approvals`)
        .set(auth(tokenFor('approver-al', ['PLATFORM_ADMIN'])))
        .send({ decision: 'approve' });
      expect(approve.status).toBe(202);
      const done = await waitForStatus(stack, prodId, 'succeeded', 30_000);
      expect(Date.parse(done.finished_at)).toBeGreaterThanOrEqual(end);
      const note = done.timeline.find((t: { detail?: string }) =>
        t.detail?.startsWith('waiting for deploy freeze'),
      );
      expect(note).toMatchObject({
        status: 'in_progress',
        detail: `waiting for deploy freeze 'short' to end at ${iso(end)}`,
      });
    });
  });

  it('exempt rollbacks when the policy says so', async () => {
    const f = await serviceWithEnvironments(stack);
    await deploySucceeded(stack, f.service.id, f.envs.dev.id, '1.0.0');
    await deploySucceeded(stack, f.service.id, f.envs.dev.id, '2.0.0');
    const window = [{ name: 'freeze', start: iso(Date.now() - 1000), end: iso(Date.now() + 3_600_000) }];
    const rollback = () =>
      stack.http
        .post(`/api/services/${f.service.id}/environments/${f.envs.dev.id}/rollback`)
        .set(auth(admin))
        .send({});
    await frozen(window, ['dev'], async () => {
      expect((await rollback()).status).toBe(409);
    });
    await frozen(
      window,
      ['dev'],
      async () => {
        const res = await rollback();
        expect(res.status).toBe(202);
        await waitForStatus(stack, res.body.id, 'succeeded');
      },
      { exempt_rollbacks: true },
    );
  });
});
