import { AuditLog, Service } from '../../src/domain/entities';
import { admin, auth, createService, createTeam } from '../support/fixtures';
import { startStack, tokenFor, uniq, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

const auditCount = (where: Record<string, unknown>) => stack.orm.em.fork().count(AuditLog, where);

describe('health, metrics and docs', () => {
  it('reports every dependency ok', async () => {
    const res = await stack.http.get('/api/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', checks: { database: 'ok', temporal: 'ok' } });
    expect((await stack.http.get('/api/health/live')).status).toBe(200);
    expect((await stack.http.get('/api/health/ready')).status).toBe(200);
  });

  it('serves Prometheus metrics labelled by route template', async () => {
    await stack.http.get('/api/services/123456').set(auth(admin));
    const res = await stack.http.get('/api/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toContain('idp_http_request_duration_seconds_bucket');
    expect(res.text).toContain('route="/api/services/:id"');
    expect(res.text).not.toContain('route="/api/services/123456"');
    expect(res.text).toContain('process_cpu_user_seconds_total');
  });

  it('generates OpenAPI 3.1 from the route schemas and a docs page', async () => {
    const res = await stack.http.get('/api/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    const create = res.body.paths['/api/services'].post;
    expect(create.requestBody.content['application/json'].schema.required).toEqual(
      expect.arrayContaining(['name', 'tags']),
    );
    expect(create.requestBody.content['application/json'].schema.additionalProperties).toBe(false);
    expect(
      res.body.paths['/api/services/{id}/environments/{envId}/deployments'].post.parameters.map(
        (p: { name: string }) => p.name,
      ),
    ).toContain('Idempotency-Key');
    const docs = await stack.http.get('/api/docs');
    expect(docs.status).toBe(200);
    expect(docs.text).toContain('/api/deployments/{id}/approvals');
  });
});

describe('correlation ids', () => {
  it('echoes a well-formed id and writes it into the audit entry', async () => {
    const id = `corr-${Date.now()}`;
    const res = await stack.http
      .post('/api/teams')
      .set(auth(admin))
      .set('X-Correlation-Id', id)
      .send({ name: uniq('t') });
    expect(res.status).toBe(201);
    expect(res.headers['x-correlation-id']).toBe(id);
    expect(await auditCount({ correlationId: id, action: 'team.create' })).toBe(1);
  });

  it.each(['has space', 'a'.repeat(129), 'bad;chars', '../etc'])(
    'replaces a malformed id (%j) with a UUID',
    async (bad) => {
      const res = await stack.http.get('/api/health').set('X-Correlation-Id', bad);
      expect(res.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
    },
  );

  it('accepts X-Request-Id as the id', async () => {
    const res = await stack.http.get('/api/health').set('X-Request-Id', 'req-42');
    expect(res.headers['x-correlation-id']).toBe('req-42');
  });
});

describe('teams', () => {
  it('creates, reads, lists and updates a team; a taken name is 409', async () => {
    const name = uniq('payments');
    const created = await stack.http
      .post('/api/teams')
      .set(auth(admin))
      .send({ name, display_name: 'Payments' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name, display_name: 'Payments' });
    expect(created.body.created_at).toMatch(/Z$/);
    const again = await stack.http.post('/api/teams').set(auth(admin)).send({ name });
    expect(again.status).toBe(409);
    expect(again.headers['content-type']).toContain('application/problem+json');
    expect(again.body).toMatchObject({ status: 409, title: 'Conflict' });
    const read = await stack.http.get(`/api/teams/${created.body.id}`).set(auth(admin));
    expect(read.body).toEqual(created.body);
    const patched = await stack.http
      .patch(`/api/teams/${created.body.id}`)
      .set(auth(admin))
      .send({ display_name: 'Pay' });
    expect(patched.body.display_name).toBe('Pay');
    expect((await stack.http.get('/api/teams/999999').set(auth(admin))).status).toBe(404);
  });

  it('pages through teams with a keyset cursor', async () => {
    for (let i = 0; i < 3; i++) await createTeam(stack);
    const first = await stack.http.get('/api/teams?limit=2').set(auth(admin));
    expect(first.body.items).toHaveLength(2);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const second = await stack.http
      .get(`/api/teams?limit=2&cursor=${first.body.next_cursor}`)
      .set(auth(admin));
    expect(second.body.items[0].id).toBeGreaterThan(first.body.items[1].id);
    const bad = await stack.http.get('/api/teams?cursor=garbage').set(auth(admin));
    expect(bad.status).toBe(400);
    expect((await stack.http.get('/api/teams?limit=0').set(auth(admin))).status).toBe(400);
    expect((await stack.http.get('/api/teams?limit=201').set(auth(admin))).status).toBe(400);
  });
});

describe('services and guardrails', () => {
  it('registers the seed example verbatim (no JSON content type) with 201', async () => {
    const name = uniq('payments');
    const res = await stack.http
      .post('/api/services')
      .set(auth(admin))
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send(`{"name":"${name}","tags":{"owner":"payments","data_sensitivity":"internal"}}`);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name,
      tags: { owner: 'payments', data_sensitivity: 'internal' },
      team: null,
      description: null,
    });
    expect(
      await auditCount({ action: 'service.create', targetId: String(res.body.id), outcome: 'success' }),
    ).toBe(1);
  });

  it('refuses missing mandatory tags, disallowed values and restricted keys with every violation, audited and counted', async () => {
    const name = uniq('bad');
    const res = await stack.http
      .post('/api/services')
      .set(auth(admin))
      .send({ name, tags: { data_sensitivity: 'top-secret', API_Token: 'hunter2' } });
    expect(res.status).toBe(400);
    expect(res.body.type).toBe('/problems/guardrail-violation');
    const fields = res.body.violations
      .map((v: { rule: string; field: string }) => `${v.rule}:${v.field}`)
      .sort();
    expect(fields).toEqual([
      'allowed_values:tags.data_sensitivity',
      'mandatory_tags:tags.owner',
      'restricted_config_keys:tags.API_Token',
    ]);
    for (const v of res.body.violations) expect(v.hint).toEqual(expect.any(String));
    expect(await stack.orm.em.fork().count(Service, { name })).toBe(0);
    const entries = await stack.orm.em.fork().find(AuditLog, {
      action: 'service.create',
      outcome: 'violation',
      correlationId: res.headers['x-correlation-id'],
    });
    expect(entries).toHaveLength(1);
    expect(JSON.stringify(entries[0]!.details)).not.toContain('hunter2');
    const metrics = await stack.http.get('/api/metrics');
    expect(metrics.text).toMatch(
      /idp_guardrail_violations_total\{rule="restricted_config_keys",action="service.create"\} [1-9]/,
    );
  });

  it('answers 409 for a taken name and 400 for unknown fields, non-JSON and an unknown team', async () => {
    const svc = await createService(stack);
    const dup = await stack.http
      .post('/api/services')
      .set(auth(admin))
      .send({ name: svc.name, tags: { owner: 'a', data_sensitivity: 'public' } });
    expect(dup.status).toBe(409);
    const unknown = await stack.http
      .post('/api/services')
      .set(auth(admin))
      .send({ name: uniq('x'), tags: { owner: 'a', data_sensitivity: 'public' }, colour: 'red' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.violations[0]).toMatchObject({ rule: 'schema' });
    const notJson = await stack.http
      .post('/api/services')
      .set(auth(admin))
      .set('Content-Type', 'application/json')
      .send('{"name":');
    expect(notJson.status).toBe(400);
    expect(notJson.body.detail).toContain('not valid JSON');
    const noTeam = await stack.http
      .post('/api/services')
      .set(auth(admin))
      .send({ name: uniq('x'), tags: { owner: 'a', data_sensitivity: 'public' }, team: 'no-such-team' });
    expect(noTeam.status).toBe(400);
    expect(noTeam.body.violations[0].field).toBe('body.team');
  });

  it('answers 413 for a body over 1 MiB', async () => {
    const res = await stack.http
      .post('/api/services')
      .set(auth(admin))
      .send({ name: 'big', tags: { owner: 'x'.repeat(1024 * 1024), data_sensitivity: 'public' } });
    expect(res.status).toBe(413);
    expect(res.body.status).toBe(413);
  });

  it('updates tags (replacing the map, validated again), team and description', async () => {
    const team = await createTeam(stack);
    const svc = await createService(stack);
    const res = await stack.http
      .patch(`/api/services/${svc.id}`)
      .set(auth(admin))
      .send({ tags: { owner: 'ops', data_sensitivity: 'restricted' }, team: team.name, description: 'd' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      tags: { owner: 'ops', data_sensitivity: 'restricted' },
      team: { id: team.id, name: team.name },
      description: 'd',
    });
    const bad = await stack.http
      .patch(`/api/services/${svc.id}`)
      .set(auth(admin))
      .send({ tags: { owner: 'ops' } });
    expect(bad.status).toBe(400);
    const after = await stack.http.get(`/api/services/${svc.id}`).set(auth(admin));
    expect(after.body.tags).toEqual({ owner: 'ops', data_sensitivity: 'restricted' });
    expect((await stack.http.patch(`/api/services/${svc.id}`).set(auth(admin)).send({})).status).toBe(400);
  });

  it('filters by team and by tag', async () => {
    const team = await createTeam(stack);
    const marker = uniq('m');
    const a = await stack.http
      .post('/api/services')
      .set(auth(admin))
      .send({ name: uniq('a'), team: team.name, tags: { owner: marker, data_sensitivity: 'public' } });
    await stack.http
      .post('/api/services')
      .set(auth(admin))
      .send({ name: uniq('b'), tags: { owner: marker, data_sensitivity: 'internal' } });
    const byTeam = await stack.http.get(`/api/services?team=${team.name}`).set(auth(admin));
    expect(byTeam.body.items.map((s: { id: number }) => s.id)).toEqual([a.body.id]);
    const byTag = await stack.http
      .get(`/api/services?tag.owner=${marker}&tag.data_sensitivity=public`)
      .set(auth(admin));
    expect(byTag.body.items.map((s: { id: number }) => s.id)).toEqual([a.body.id]);
    const bad = await stack.http.get('/api/services?colour=red').set(auth(admin));
    expect(bad.status).toBe(400);
  });
});

describe('policies', () => {
  it('lists the seeded defaults', async () => {
    const res = await stack.http.get('/api/policies').set(auth(admin));
    expect(res.body.items.map((p: { name: string }) => p.name).sort()).toEqual([
      'allowed_values',
      'auto_rollback',
      'deploy_freeze',
      'mandatory_tags',
      'prod_approvals',
      'promotion_gates',
      'promotion_order',
      'restricted_config_keys',
    ]);
    // The v2 kinds as the contract seeds them.
    const byName = Object.fromEntries(res.body.items.map((p: { name: string }) => [p.name, p]));
    expect(byName['auto_rollback']).toMatchObject({ enabled: false, config: { tiers: ['prod'] } });
    expect(byName['promotion_gates']).toMatchObject({ enabled: true, config: { gates: [] } });
    expect(byName['deploy_freeze']).toMatchObject({ enabled: false, config: { windows: [], tiers: [] } });
  });

  it('evaluates without changing anything', async () => {
    const before = await auditCount({});
    const res = await stack.http
      .post('/api/policies/evaluate')
      .set(auth(admin))
      .send({
        action: 'environment.create',
        payload: { name: 'dev', tier: 'dev', config: { db: { Password: 'x' } } },
      });
    expect(res.status).toBe(200);
    expect(res.body.allowed).toBe(false);
    expect(res.body.violations[0]).toMatchObject({
      rule: 'restricted_config_keys',
      field: 'config.db.Password',
    });
    const ok = await stack.http
      .post('/api/policies/evaluate')
      .set(auth(admin))
      .send({
        action: 'service.create',
        payload: { name: 'x', tags: { owner: 'a', data_sensitivity: 'public' } },
      });
    expect(ok.body).toEqual({ allowed: true, violations: [] });
    expect(await auditCount({})).toBe(before);
    expect(
      (await stack.http.post('/api/policies/evaluate').set(auth(admin)).send({ action: 'nope', payload: {} }))
        .status,
    ).toBe(400);
  });

  it('validates a policy per kind, audits the change and applies it', async () => {
    const bad = await stack.http
      .put('/api/policies/allowed_values')
      .set(auth(admin))
      .send({ kind: 'allowed_values', enabled: true, config: { tag: 'data_sensitivity' } });
    expect(bad.status).toBe(400);
    const wrongKind = await stack.http
      .put('/api/policies/allowed_values')
      .set(auth(admin))
      .send({ kind: 'mandatory_tags', enabled: true, config: { tags: [] } });
    expect(wrongKind.status).toBe(400);
    const put = await stack.http
      .put('/api/policies/tier_tag')
      .set(auth(admin))
      .send({ kind: 'mandatory_tags', enabled: true, config: { tags: ['cost_center'] } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({
      name: 'tier_tag',
      kind: 'mandatory_tags',
      enabled: true,
      updated_by: 'root-admin',
    });
    const refused = await stack.http
      .post('/api/services')
      .set(auth(admin))
      .send({ name: uniq('c'), tags: { owner: 'a', data_sensitivity: 'public' } });
    expect(refused.status).toBe(400);
    expect(refused.body.violations[0].field).toBe('tags.cost_center');
    await stack.http
      .put('/api/policies/tier_tag')
      .set(auth(admin))
      .send({ kind: 'mandatory_tags', enabled: false, config: { tags: ['cost_center'] } });
    expect(await auditCount({ action: 'policy.update', targetId: 'tier_tag' })).toBe(2);
  });
});

describe('audit log', () => {
  it('filters and pages newest first; a TEAM_ADMIN sees only own teams; a DEVELOPER gets 403', async () => {
    const team = await createTeam(stack);
    const other = await createTeam(stack);
    await createService(stack, team.name);
    await createService(stack, other.name);
    const all = await stack.http.get('/api/audit-logs?action=service.create&limit=200').set(auth(admin));
    expect(all.status).toBe(200);
    const ids = all.body.items.map((e: { id: number }) => e.id);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    const teamAdmin = tokenFor('ta', ['TEAM_ADMIN'], [team.name]);
    const scoped = await stack.http.get('/api/audit-logs?limit=200').set(auth(teamAdmin));
    expect(scoped.body.items.length).toBeGreaterThan(0);
    expect(scoped.body.items.every((e: { team: string }) => e.team === team.name)).toBe(true);
    const otherTeam = await stack.http.get(`/api/audit-logs?team=${other.name}`).set(auth(teamAdmin));
    expect(otherTeam.body.items).toEqual([]);
    const dev = await stack.http
      .get('/api/audit-logs')
      .set(auth(tokenFor('dev', ['DEVELOPER'], [team.name])));
    expect(dev.status).toBe(403);
    expect(await auditCount({ action: 'audit.read', outcome: 'denied', actor: 'dev' })).toBe(1);
    const since = await stack.http
      .get(`/api/audit-logs?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)
      .set(auth(admin));
    expect(since.body.items).toEqual([]);
    expect((await stack.http.get('/api/audit-logs?since=yesterday').set(auth(admin))).status).toBe(400);
  });
});
