/** Rollbacks, manual and automatic, through the API and a real worker on the Temporal dev server. */
import { AuditLog, Deployment } from '../../src/domain/entities';
import {
  admin,
  auth,
  deploySucceeded,
  promoteToProd,
  serviceWithEnvironments,
  triggerDeployment,
  waitForStatus,
  type ServiceFixture,
} from '../support/fixtures';
import { eventually, startStack, tokenFor, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: true });
});
afterAll(async () => {
  await stack.close();
});

const approver = tokenFor('approver-bo', ['PLATFORM_ADMIN']);
const rollbackUrl = (f: ServiceFixture, tier: 'dev' | 'staging' | 'prod') =>
  `/api/services/${f.service.id}/environments/${f.envs[tier].id}/rollback`;

/** Puts policy `name` as given, for the duration of `fn`. */
async function withPolicy<T>(
  name: string,
  enabled: boolean,
  config: unknown,
  fn: () => Promise<T>,
): Promise<T> {
  const before = (await stack.http.get('/api/policies?limit=200').set(auth(admin))).body.items.find(
    (p: { name: string }) => p.name === name,
  );
  expect(
    (
      await stack.http
        .put(`/api/policies/${name}`)
        .set(auth(admin))
        .send({ kind: before.kind, enabled, config })
    ).status,
  ).toBe(200);
  try {
    return await fn();
  } finally {
    await stack.http
      .put(`/api/policies/${name}`)
      .set(auth(admin))
      .send({ kind: before.kind, enabled: before.enabled, config: before.config });
  }
}

/** Approves prod deployment `id` as another admin and waits for its end. */
async function approveProd(id: number, status = 'succeeded') {
  const res = await stack.http
    .post(`/api/deployments/${id}/approvals`)
    .set(auth(approver))
    .send({ decision: 'approve' });
  expect([res.status, res.body.detail]).toEqual([202, undefined]);
  return waitForStatus(stack, id, status);
}

describe('manual rollback', () => {
  it('is 409 with nothing to roll back to, 400 to a version that never succeeded there', async () => {
    const f = await serviceWithEnvironments(stack);
    const none = await stack.http.post(rollbackUrl(f, 'dev')).set(auth(admin)).send({});
    expect(none.status).toBe(409);
    expect(none.body.detail).toContain('nothing to roll back');
    await deploySucceeded(stack, f.service.id, f.envs.dev.id, '1.0.0');
    const first = await stack.http.post(rollbackUrl(f, 'dev')).set(auth(admin)).send({});
    expect(first.status).toBe(409);
    expect(first.body.detail).toContain('nothing to roll back to');
    const never = await stack.http.post(rollbackUrl(f, 'dev')).set(auth(admin)).send({ to_version: '0.9.0' });
    expect(never.status).toBe(400);
    expect(never.body.violations[0].field).toBe('body.to_version');
    expect(
      await stack.orm.em.fork().count(Deployment, { environmentId: f.envs.dev.id, kind: 'rollback' }),
    ).toBe(0);
  });

  it('rolls back to the version before the current one: kind rollback, rollback_of, rolled_back_by, no promotion check', async () => {
    const f = await serviceWithEnvironments(stack);
    await deploySucceeded(stack, f.service.id, f.envs.dev.id, '1.0.0');
    const current = await deploySucceeded(stack, f.service.id, f.envs.dev.id, '2.0.0');
    const res = await stack.http
      .post(rollbackUrl(f, 'dev'))
      .set(auth(admin))
      .send({ reason: '2.0.0 leaks memory' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      kind: 'rollback',
      rollback_of: current.id,
      version: '1.0.0',
      initiated_by: 'rollback',
    });
    const done = await waitForStatus(stack, res.body.id, 'succeeded');
    expect(done.kind).toBe('rollback');
    const replaced = (await stack.http.get(`/api/deployments/${current.id}`).set(auth(admin))).body;
    expect(replaced.rolled_back_by).toBe(res.body.id);
    const created = await stack.orm.em
      .fork()
      .findOneOrFail(AuditLog, { action: 'deployment.create', targetId: String(res.body.id) });
    expect(created.details).toMatchObject({
      kind: 'rollback',
      rollback_of: current.id,
      reason: '2.0.0 leaks memory',
    });
  });

  it('rolls staging back to an explicit version that succeeded there (the promotion order is not asked)', async () => {
    const f = await serviceWithEnvironments(stack);
    await deploySucceeded(stack, f.service.id, f.envs.dev.id, '1.0.0');
    await deploySucceeded(stack, f.service.id, f.envs.staging.id, '1.0.0');
    await deploySucceeded(stack, f.service.id, f.envs.dev.id, '1.1.0');
    await deploySucceeded(stack, f.service.id, f.envs.staging.id, '1.1.0');
    const res = await stack.http
      .post(rollbackUrl(f, 'staging'))
      .set(auth(admin))
      .send({ to_version: '1.0.0' });
    expect(res.status).toBe(202);
    await waitForStatus(stack, res.body.id, 'succeeded');
  });

  it('of a prod environment waits for approval, unless the approvals rule exempts rollbacks', async () => {
    const f = await serviceWithEnvironments(stack);
    for (const version of ['1.0.0', '2.0.0']) {
      const id = await promoteToProd(stack, f, version);
      await approveProd(id);
    }
    const waiting = await stack.http.post(rollbackUrl(f, 'prod')).set(auth(admin)).send({});
    expect(waiting.status).toBe(202);
    expect(waiting.body.approvals_required).toBe(1);
    await waitForStatus(stack, waiting.body.id, 'awaiting_approval');
    await approveProd(waiting.body.id);
    await withPolicy(
      'prod_approvals',
      true,
      { tier: 'prod', required: 1, timeout: '24h', rollbacks_exempt: true },
      async () => {
        const exempt = await stack.http
          .post(rollbackUrl(f, 'prod'))
          .set(auth(admin))
          .send({ to_version: '2.0.0' });
        expect(exempt.status).toBe(202);
        expect(exempt.body.approvals_required).toBe(0);
        await waitForStatus(stack, exempt.body.id, 'succeeded');
      },
    );
  });

  it('takes the environment lock: 409 while another deployment is active', async () => {
    const f = await serviceWithEnvironments(stack);
    await deploySucceeded(stack, f.service.id, f.envs.dev.id, '1.0.0');
    await deploySucceeded(stack, f.service.id, f.envs.dev.id, '2.0.0');
    const busy = await triggerDeployment(stack, f.service.id, f.envs.dev.id, {
      version: '3.0.0',
      config: { simulate: { delay_ms: 3000 } },
    });
    const res = await stack.http.post(rollbackUrl(f, 'dev')).set(auth(admin)).send({});
    expect(res.status).toBe(409);
    expect(res.body.detail).toContain(busy.job_id);
  });
});

describe('automatic rollback', () => {
  it('rolls a failed prod deployment back to the earlier success, once; never a rollback of a rollback', async () => {
    await withPolicy('auto_rollback', true, { tiers: ['prod'] }, () =>
      withPolicy(
        'prod_approvals',
        true,
        { tier: 'prod', required: 1, timeout: '24h', rollbacks_exempt: true },
        async () => {
          const f = await serviceWithEnvironments(stack);
          await approveProd(await promoteToProd(stack, f, '1.0.0'));
          await deploySucceeded(stack, f.service.id, f.envs.dev.id, '2.0.0');
          await deploySucceeded(stack, f.service.id, f.envs.staging.id, '2.0.0');
          const bad = await triggerDeployment(stack, f.service.id, f.envs.prod.id, {
            version: '2.0.0',
            config: { simulate: { fail: true } },
          });
          await waitForStatus(stack, bad.id, 'awaiting_approval');
          await approveProd(bad.id, 'failed');
          const failed = await eventually(
            async () => {
              const d = (await stack.http.get(`/api/deployments/${bad.id}`).set(auth(admin))).body;
              return d.rolled_back_by ? d : undefined;
            },
            30_000,
            'rolled_back_by',
          );
          const rollback = await waitForStatus(stack, failed.rolled_back_by, 'succeeded');
          expect(rollback).toMatchObject({
            kind: 'rollback',
            rollback_of: bad.id,
            version: '1.0.0',
            initiated_by: 'auto-rollback',
            requested_by: 'system:auto-rollback',
          });
          expect(await stack.orm.em.fork().count(Deployment, { rollbackOf: bad.id })).toBe(1);
          // The rollback itself failing is not rolled back again.
          await stack.http
            .patch(`/api/services/${f.service.id}/environments/${f.envs.prod.id}`)
            .set(auth(admin))
            .send({ config: { simulate: { fail: true } } });
          const manual = await stack.http
            .post(rollbackUrl(f, 'prod'))
            .set(auth(admin))
            .send({ to_version: '1.0.0' });
          expect(manual.status).toBe(202);
          await waitForStatus(stack, manual.body.id, 'failed');
          await new Promise((r) => setTimeout(r, 1500));
          expect(await stack.orm.em.fork().count(Deployment, { rollbackOf: manual.body.id })).toBe(0);
          expect(
            (await stack.http.get(`/api/deployments/${manual.body.id}`).set(auth(admin))).body.rolled_back_by,
          ).toBeNull();
        },
      ),
    );
  });

  it('does nothing for a tier the policy does not list', async () => {
    await withPolicy('auto_rollback', true, { tiers: ['prod'] }, async () => {
      const f = await serviceWithEnvironments(stack);
      await deploySucceeded(stack, f.service.id, f.envs.dev.id, '1.0.0');
      const bad = await triggerDeployment(stack, f.service.id, f.envs.dev.id, {
        version: '2.0.0',
        config: { simulate: { fail: true } },
      });
      await waitForStatus(stack, bad.id, 'failed');
      await new Promise((r) => setTimeout(r, 1000));
      expect(await stack.orm.em.fork().count(Deployment, { rollbackOf: bad.id })).toBe(0);
    });
  });
});
