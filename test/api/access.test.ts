/**
 * The route layer's access rule (a route declares the roles it admits; anyone else gets 403,
 * audited, before the body is read) and the catalog fixes that came with it: a single-team
 * TEAM_ADMIN registers the seed's first example for that team, and PUT takes the policy as GET
 * returned it.
 */
import { AuditLog, PlatformPolicy, Service, Team } from '../../src/domain/entities';
import { admin, auth, createTeam } from '../support/fixtures';
import { startStack, tokenFor, uniq, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

const denials = (actor: string, action: string) =>
  stack.orm.em.fork().find(AuditLog, { actor, action, outcome: 'denied' });

describe('authorization before parsing', () => {
  // Malformed for the route's schema, or not JSON at all: the role decides first.
  const MALFORMED: [string, 'put' | 'post' | 'patch', string, string | object, string][] = [
    [
      'PUT /api/policies/:name, wrong kind type',
      'put',
      '/api/policies/prod_approvals',
      { kind: 5, config: 'x' },
      'policy.update',
    ],
    ['PUT /api/policies/:name, not JSON', 'put', '/api/policies/prod_approvals', '{"kind":', 'policy.update'],
    ['POST /api/teams, empty body', 'post', '/api/teams', {}, 'team.create'],
    ['POST /api/teams, unknown field', 'post', '/api/teams', { name: 'x', owner: 'me' }, 'team.create'],
    ['PATCH /api/teams/:id, wrong type', 'patch', '/api/teams/1', { display_name: 42 }, 'team.update'],
    ['POST /api/services, no tags', 'post', '/api/services', { name: 'Bad Name' }, 'service.create'],
  ];

  it.each(MALFORMED)(
    '%s by a DEVELOPER is 403 and audited as a refusal',
    async (_name, method, url, body, action) => {
      const sub = uniq('dev');
      const token = tokenFor(sub, ['DEVELOPER'], ['payments']);
      const req = stack.http[method](url).set(auth(token));
      const res =
        typeof body === 'string'
          ? await req.set('Content-Type', 'application/json').send(body)
          : await req.send(body);
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.body.detail).toContain('PLATFORM_ADMIN');
      const entries = await denials(sub, action);
      expect(entries).toHaveLength(1);
      expect(entries[0]!.details).toMatchObject({ reason: res.body.detail });
    },
  );

  it('still parses the body of an admitted caller: the same malformed body from a PLATFORM_ADMIN is 400', async () => {
    const res = await stack.http
      .put('/api/policies/prod_approvals')
      .set(auth(admin))
      .send({ kind: 5, config: 'x' });
    expect(res.status).toBe(400);
    expect(res.body.violations.map((v: { field: string }) => v.field)).toEqual(
      expect.arrayContaining(['body.kind', 'body.config']),
    );
  });

  it('names the target in the refusal when the path has one', async () => {
    const team = await createTeam(stack);
    const sub = uniq('dev');
    const res = await stack.http
      .patch(`/api/teams/${team.id}`)
      .set(auth(tokenFor(sub, ['DEVELOPER'])))
      .send({ display_name: 'x' });
    expect(res.status).toBe(403);
    expect((await denials(sub, 'team.update'))[0]).toMatchObject({
      targetType: 'team',
      targetId: String(team.id),
    });
    expect((await stack.orm.em.fork().findOneOrFail(Team, team.id)).displayName).toBeNull();
  });
});

describe("the seed's example 1 by a TEAM_ADMIN", () => {
  const SEED_BODY = (name: string) =>
    `{"name":"${name}","tags":{"owner":"payments","data_sensitivity":"internal"}}`;

  it('of exactly one team registers the service for that team (201)', async () => {
    const team = await createTeam(stack);
    const name = uniq('payments');
    const res = await stack.http
      .post('/api/services')
      .set(auth(tokenFor(uniq('ta'), ['TEAM_ADMIN'], [team.name])))
      .send(SEED_BODY(name));
    expect(res.status).toBe(201);
    expect(res.body.team).toEqual({ id: team.id, name: team.name });
    expect((await stack.orm.em.fork().findOneOrFail(Service, { name })).teamId).toBe(team.id);
  });

  it('of two teams must name one (403), and an explicit null team stays PLATFORM_ADMIN only', async () => {
    const [a, b] = [await createTeam(stack), await createTeam(stack)];
    const two = await stack.http
      .post('/api/services')
      .set(auth(tokenFor(uniq('ta'), ['TEAM_ADMIN'], [a.name, b.name])))
      .send(SEED_BODY(uniq('svc')));
    expect(two.status).toBe(403);
    const none = await stack.http
      .post('/api/services')
      .set(auth(tokenFor(uniq('ta'), ['TEAM_ADMIN'], [a.name])))
      .send({ name: uniq('svc'), tags: { owner: 'x', data_sensitivity: 'internal' }, team: null });
    expect(none.status).toBe(403);
  });

  it('by a PLATFORM_ADMIN registers it without a team, as before', async () => {
    const res = await stack.http
      .post('/api/services')
      .set(auth(admin))
      .send(SEED_BODY(uniq('svc')));
    expect(res.status).toBe(201);
    expect(res.body.team).toBeNull();
  });
});

describe('PUT /api/policies/:name with the body GET returned', () => {
  it('is 200: the read-only fields are ignored and the change applies', async () => {
    const list = await stack.http.get('/api/policies').set(auth(admin));
    const current = list.body.items.find((p: { name: string }) => p.name === 'prod_approvals');
    expect(current).toMatchObject({
      name: 'prod_approvals',
      updated_at: expect.any(String),
      updated_by: expect.any(String),
    });
    const res = await stack.http
      .put('/api/policies/prod_approvals')
      .set(auth(tokenFor('policy-editor', ['PLATFORM_ADMIN'])))
      .send({ ...current, config: { ...current.config, required: 2 } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      name: 'prod_approvals',
      config: { required: 2 },
      updated_by: 'policy-editor',
    });
    expect(
      (await stack.orm.em.fork().findOneOrFail(PlatformPolicy, { name: 'prod_approvals' })).config,
    ).toMatchObject({ required: 2 });
  });

  it('is 400 naming body.name when the body names another policy, and changes nothing', async () => {
    const before = await stack.orm.em.fork().findOneOrFail(PlatformPolicy, { name: 'mandatory_tags' });
    const res = await stack.http
      .put('/api/policies/mandatory_tags')
      .set(auth(admin))
      .send({ name: 'prod_approvals', kind: 'mandatory_tags', enabled: true, config: { tags: ['owner'] } });
    expect(res.status).toBe(400);
    expect(res.body.violations).toEqual([expect.objectContaining({ field: 'body.name' })]);
    expect(
      (await stack.orm.em.fork().findOneOrFail(PlatformPolicy, { name: 'mandatory_tags' })).config,
    ).toEqual(before.config);
  });
});
