/**
 * One audit entry per state-changing call (issue 5's security suite): a journal of calls by every
 * role, allowed and refused, over every write route, each noting the entry it must leave; then the
 * audit log, read over a separate connection, holds exactly those entries, plus one per status
 * change the worker made, as the timelines show them.
 */
import type { Response } from 'supertest';
import { caller, type Caller } from './callers';
import { TAGS, deploymentsUrl, environmentsUrl, useSecurityStack } from './security-stack';
import { waitForStatus } from '../../support/fixtures';
import { eventually, uniq } from '../../support/stack';

const api = useSecurityStack({ worker: true });
const { get, send } = api;

describe('every state-changing call leaves exactly one audit entry', () => {
  const T = uniq('audited');
  const pa = caller('PLATFORM_ADMIN');
  const ta = caller('TEAM_ADMIN', [T]);
  const ta2 = caller('TEAM_ADMIN', [T]);
  const dev = caller('DEVELOPER', [T]);
  const outsider = caller(['TEAM_ADMIN', 'DEVELOPER'], [uniq('elsewhere')]);
  const policy = uniq('audited').replace(/-/g, '_');

  interface Entry {
    action: string;
    outcome: 'success' | 'denied' | 'violation';
    target_type: string;
    target_id: string | null;
    actor: string;
    team: string | null;
  }
  /** Every call made, with the entry it must leave (null: none). */
  const journal: { call: string; correlationId: string; entry: Entry | null }[] = [];
  const deployments: number[] = [];
  const environments: number[] = [];

  /**
   * Sends the call as `who`, checks its status and notes the entry it must leave: `[action, outcome,
   * target type, target id, team (default T)]` from the response, or null for none.
   */
  async function step(
    who: Caller,
    method: 'post' | 'patch' | 'put' | 'get',
    url: string,
    body: object | undefined,
    status: number,
    entry:
      | ((
          res: Response,
        ) => [Entry['action'], Entry['outcome'], string, string | number | null, (string | null)?])
      | null,
  ): Promise<Response> {
    const res = method === 'get' ? await get(url, who.token) : await send(method, url, body, who.token);
    if (res.status !== status) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(res.body)}`);
    const e = entry?.(res);
    journal.push({
      call: `${who.sub} ${method.toUpperCase()} ${url} → ${status}`,
      correlationId: res.headers['x-correlation-id'],
      entry: e
        ? {
            action: e[0],
            outcome: e[1],
            target_type: e[2],
            target_id: e[3] === null ? null : String(e[3]),
            actor: who.sub,
            team: e[4] === undefined ? T : e[4],
          }
        : null,
    });
    return res;
  }

  beforeAll(async () => {
    const team = (
      await step(pa, 'post', '/api/teams', { name: T }, 201, (r) => [
        'team.create',
        'success',
        'team',
        r.body.id,
      ])
    ).body;
    await step(pa, 'patch', `/api/teams/${team.id}`, { display_name: 'Audited' }, 200, () => [
      'team.update',
      'success',
      'team',
      team.id,
    ]);
    await step(ta, 'patch', `/api/teams/${team.id}`, { display_name: 'Mine' }, 403, () => [
      'team.update',
      'denied',
      'team',
      team.id,
    ]);
    await step(pa, 'patch', '/api/teams/2147483647', { display_name: 'Nobody' }, 404, null);
    await step(pa, 'post', '/api/teams', { name: T }, 409, null);

    const sid = (
      await step(ta, 'post', '/api/services', { name: uniq('audited'), team: T, tags: TAGS }, 201, (r) => [
        'service.create',
        'success',
        'service',
        r.body.id,
      ])
    ).body.id;
    await step(ta, 'patch', `/api/services/${sid}`, { description: 'audited' }, 200, () => [
      'service.update',
      'success',
      'service',
      sid,
    ]);
    await step(ta, 'patch', `/api/services/${sid}`, { tags: { owner: 'x' } }, 400, () => [
      'service.update',
      'violation',
      'service',
      sid,
    ]);
    await step(dev, 'patch', `/api/services/${sid}`, { description: 'mine' }, 403, () => [
      'service.update',
      'denied',
      'service',
      sid,
    ]);
    await step(ta, 'post', '/api/services', { name: uniq('s'), team: T, tags: { owner: 'x' } }, 400, () => [
      'service.create',
      'violation',
      'service',
      null,
    ]);
    await step(
      ta,
      'post',
      '/api/services',
      { name: uniq('s'), team: T, tags: TAGS, colour: 'red' },
      400,
      null,
    );

    const put = { kind: 'mandatory_tags', enabled: false, config: { tags: ['cost_center'] } };
    await step(pa, 'put', `/api/policies/${policy}`, put, 200, () => [
      'policy.update',
      'success',
      'policy',
      policy,
      null,
    ]);
    await step(ta, 'put', `/api/policies/${policy}`, put, 403, () => [
      'policy.update',
      'denied',
      'policy',
      policy,
      null,
    ]);

    const env: Record<string, number> = {};
    for (const tier of ['dev', 'staging', 'prod']) {
      env[tier] = (
        await step(ta, 'post', environmentsUrl(sid), { name: tier, tier }, 202, (r) => [
          'environment.create',
          'success',
          'environment',
          r.body.id,
        ])
      ).body.id;
      environments.push(env[tier]!);
    }
    await step(dev, 'post', environmentsUrl(sid), { name: 'qa', tier: 'dev' }, 403, () => [
      'environment.create',
      'denied',
      'service',
      sid,
    ]);
    await step(
      ta,
      'post',
      environmentsUrl(sid),
      { name: 'leaky', tier: 'dev', config: { db: { password: 'x' } } },
      400,
      () => ['environment.create', 'violation', 'service', sid],
    );
    await step(ta, 'post', environmentsUrl(2147483647), { name: 'dev', tier: 'dev' }, 404, null);
    for (const id of environments) {
      await eventually(async () => (await get(`${environmentsUrl(sid)}/${id}`)).body.status === 'ready');
    }

    /** Triggers a deployment as `who` (202), notes it and waits for `status`. */
    const trigger = async (who: Caller, tier: string, body: object, status: string) => {
      const res = await step(who, 'post', deploymentsUrl(sid, env[tier]!), body, 202, (r) => [
        'deployment.create',
        'success',
        'deployment',
        r.body.id,
      ]);
      deployments.push(res.body.id);
      await waitForStatus(api.stack, res.body.id, status);
      return res.body.id as number;
    };
    await trigger(dev, 'dev', { version: '1.0.0' }, 'succeeded');
    await trigger(dev, 'staging', { version: '1.0.0' }, 'succeeded');
    await step(dev, 'post', deploymentsUrl(sid, env['prod']!), { version: '9.9.9' }, 400, () => [
      'deployment.create',
      'violation',
      'environment',
      env['prod']!,
    ]);
    await step(
      dev,
      'post',
      deploymentsUrl(sid, env['dev']!),
      { version: '1.0.1', config: { api_token: 'x' } },
      400,
      () => ['deployment.create', 'violation', 'environment', env['dev']!],
    );
    await step(outsider, 'post', deploymentsUrl(sid, env['dev']!), { version: '1.0.1' }, 403, () => [
      'deployment.create',
      'denied',
      'environment',
      env['dev']!,
    ]);

    const approved = await trigger(dev, 'prod', { version: '1.0.0' }, 'awaiting_approval');
    // Refused by role before the body is read: the decision it carried is unknown, hence `decide`.
    await step(dev, 'post', `/api/deployments/${approved}/approvals`, { decision: 'approve' }, 403, () => [
      'deployment.decide',
      'denied',
      'deployment',
      approved,
    ]);
    await step(ta, 'post', `/api/deployments/${approved}/approvals`, { decision: 'approve' }, 202, () => [
      'deployment.approve',
      'success',
      'deployment',
      approved,
    ]);
    await waitForStatus(api.stack, approved, 'succeeded');
    await step(ta2, 'post', `/api/deployments/${approved}/approvals`, { decision: 'approve' }, 409, null);

    const rejected = await trigger(dev, 'prod', { version: '1.0.0' }, 'awaiting_approval');
    await step(
      ta2,
      'post',
      `/api/deployments/${rejected}/approvals`,
      { decision: 'reject', comment: 'not today' },
      202,
      () => ['deployment.reject', 'success', 'deployment', rejected],
    );
    await waitForStatus(api.stack, rejected, 'rejected');

    const cancelled = await trigger(dev, 'prod', { version: '1.0.0' }, 'awaiting_approval');
    await step(outsider, 'post', `/api/deployments/${cancelled}/cancel`, undefined, 403, () => [
      'deployment.cancel',
      'denied',
      'deployment',
      cancelled,
    ]);
    await step(
      dev,
      'post',
      `/api/deployments/${cancelled}/cancel`,
      { reason: 'changed my mind' },
      202,
      () => ['deployment.cancel', 'success', 'deployment', cancelled],
    );
    await waitForStatus(api.stack, cancelled, 'cancelled');
    await step(dev, 'post', `/api/deployments/${cancelled}/cancel`, undefined, 409, null);
    await step(dev, 'post', '/api/deployments/2147483647/cancel', undefined, 404, null);
    await step(dev, 'get', '/api/audit-logs', undefined, 403, () => [
      'audit.read',
      'denied',
      'audit_log',
      null,
      null,
    ]);
  });

  /** Entries the worker writes for status changes carry a dedupe key `<job>:status:<status>`. */
  const TRANSITION = `dedupe_key like '%:status:%'`;

  it('writes one entry per allowed or refused call, and none for 400 invalid input, 404 or 409', async () => {
    const { rows } = await api.pg.query(
      `select correlation_id, json_build_object('action', action, 'outcome', outcome, 'target_type', target_type,
         'target_id', target_id, 'actor', actor, 'team', team) as entry
        from audit_log where correlation_id = any($1) and (dedupe_key is null or not ${TRANSITION}) order by id`,
      [journal.map((j) => j.correlationId)],
    );
    const written = journal.map(({ call, correlationId }) => [
      call,
      rows
        .filter((r: { correlation_id: string }) => r.correlation_id === correlationId)
        .map((r: { entry: Entry }) => r.entry),
    ]);
    expect(written).toEqual(journal.map(({ call, entry }) => [call, entry ? [entry] : []]));
  });

  it('records each status change of the worker exactly once, as the timeline shows it', async () => {
    for (const id of deployments) {
      const { timeline } = (await get(`/api/deployments/${id}`)).body as {
        timeline: { status: string; actor: string }[];
      };
      const { rows } = await api.pg.query(
        `select action, actor from audit_log where target_type = 'deployment' and target_id = $1 and ${TRANSITION} order by id`,
        [String(id)],
      );
      expect(rows).toEqual(
        timeline.slice(1).map((t) => ({ action: `deployment.${t.status}`, actor: t.actor })),
      );
    }
    const { rows } = await api.pg.query(
      `select target_id, action, actor from audit_log where target_type = 'environment' and target_id = any($1) and ${TRANSITION} order by target_id::int`,
      [environments.map(String)],
    );
    expect(rows).toEqual(
      environments.map((id) => ({
        target_id: String(id),
        action: 'environment.ready',
        actor: 'system:worker',
      })),
    );
  });

  it('leaves no other entry by these callers', async () => {
    const subs = [pa, ta, ta2, dev, outsider].map((c) => c.sub);
    const { rows } = await api.pg.query(
      `select action, correlation_id from audit_log where actor = any($1) and (dedupe_key is null or not ${TRANSITION})`,
      [subs],
    );
    const calls = new Set(journal.map((j) => j.correlationId));
    expect(rows.filter((r: { correlation_id: string }) => !calls.has(r.correlation_id))).toEqual([]);
    expect(rows).toHaveLength(journal.filter((j) => j.entry).length);
  });
});
