import { generateKeyPairSync, createHmac } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { AuditLog } from '../../src/domain/entities';
import type { Role } from '../../src/domain/types';
import { admin, auth, createService, createTeam } from '../support/fixtures';
import { TEST_SECRET, startStack, tokenFor, uniq, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const claims = { sub: 'mallory', roles: ['PLATFORM_ADMIN'], teams: [] };

describe('JWT attacks get 401 and change nothing', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const cases: [string, () => string][] = [
    ['no token', () => ''],
    ['alg none', () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, exp: now() + 600 })}.`],
    ['wrong key', () => jwt.sign(claims, 'another-secret-that-is-long-enough-0123456789', { algorithm: 'HS256', expiresIn: '1h' })],
    ['RS256 when HS256 is pinned', () => jwt.sign(claims, privateKey, { algorithm: 'RS256', expiresIn: '1h' })],
    ['HS256 signed with the public key (confusion)', () => {
      const h = b64({ alg: 'HS256', typ: 'JWT' });
      const p = b64({ ...claims, exp: now() + 600 });
      return `${h}.${p}.${createHmac('sha256', pem).update(`${h}.${p}`).digest('base64url')}`;
    }],
    ['expired', () => jwt.sign({ ...claims, exp: now() - 60 }, TEST_SECRET, { algorithm: 'HS256' })],
    ['no exp', () => jwt.sign(claims, TEST_SECRET, { algorithm: 'HS256' })],
    ['not yet valid', () => jwt.sign({ ...claims, nbf: now() + 3600 }, TEST_SECRET, { algorithm: 'HS256', expiresIn: '2h' })],
    ['unknown role', () => jwt.sign({ ...claims, roles: ['ROOT'] }, TEST_SECRET, { algorithm: 'HS256', expiresIn: '1h' })],
    ['no sub', () => jwt.sign({ roles: ['PLATFORM_ADMIN'] }, TEST_SECRET, { algorithm: 'HS256', expiresIn: '1h' })],
    ['tampered payload', () => {
      const [h, , s] = tokenFor('dev', ['DEVELOPER']).split('.');
      return `${h}.${b64({ ...claims, exp: now() + 600 })}.${s}`;
    }],
    ['garbage', () => 'not.a.jwt'],
    ['huge token', () => jwt.sign({ ...claims, pad: 'x'.repeat(200_000) }, 'wrong-wrong-wrong-wrong-wrong-wrong-wrong', { algorithm: 'HS256', expiresIn: '1h' })],
  ];

  it.each(cases)('%s', async (_name, make) => {
    const name = uniq('attack');
    const token = make();
    const req = stack.http.post('/api/teams');
    const res = await (token ? req.set('Authorization', `Bearer ${token}`) : req).send({ name });
    expect([401, 431]).toContain(res.status);
    if (res.status === 401) {
      expect(res.body).toMatchObject({ status: 401, type: '/problems/unauthenticated' });
    }
    expect((await stack.http.get('/api/teams?limit=200').set(auth(admin))).body.items.map((t: { name: string }) => t.name)).not.toContain(name);
  });

  it('checks iss and aud when configured', async () => {
    const scoped = await startStack({ env: { JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'idp-api' } });
    try {
      const sign = (extra: object) => jwt.sign({ ...claims, ...extra }, TEST_SECRET, { algorithm: 'HS256', expiresIn: '1h' });
      expect((await scoped.http.get('/api/teams').set(auth(sign({})))).status).toBe(401);
      expect((await scoped.http.get('/api/teams').set(auth(sign({ iss: 'https://evil', aud: 'idp-api' })))).status).toBe(401);
      expect((await scoped.http.get('/api/teams').set(auth(sign({ iss: 'https://idp.example', aud: 'other' })))).status).toBe(401);
      expect((await scoped.http.get('/api/teams').set(auth(sign({ iss: 'https://idp.example', aud: 'idp-api' })))).status).toBe(200);
    } finally {
      await scoped.close();
    }
  });

  it('counts auth failures in a metric', async () => {
    await stack.http.get('/api/teams').set('Authorization', 'Bearer nope');
    const metrics = await stack.http.get('/api/metrics');
    expect(metrics.text).toMatch(/idp_auth_failures_total\{status="401",reason="token"\} [1-9]/);
  });
});

type Scope = 'own' | 'other' | 'none';
type Expect = Record<Role, Record<Scope, number>>;
const all = (s: number): Record<Scope, number> => ({ own: s, other: s, none: s });

/**
 * The contract's permission table as HTTP outcomes, per route × role × team relation.
 * 'none' is a caller with no team at all acting on a team-owned service.
 */
const MATRIX: [string, Expect][] = [
  ['create team', { PLATFORM_ADMIN: all(201), TEAM_ADMIN: all(403), DEVELOPER: all(403) }],
  ['update team', { PLATFORM_ADMIN: all(200), TEAM_ADMIN: all(403), DEVELOPER: all(403) }],
  ['put policy', { PLATFORM_ADMIN: all(200), TEAM_ADMIN: all(403), DEVELOPER: all(403) }],
  ['register service', { PLATFORM_ADMIN: all(201), TEAM_ADMIN: { own: 201, other: 403, none: 403 }, DEVELOPER: all(403) }],
  ['update service', { PLATFORM_ADMIN: all(200), TEAM_ADMIN: { own: 200, other: 403, none: 403 }, DEVELOPER: all(403) }],
  ['provision environment', { PLATFORM_ADMIN: all(202), TEAM_ADMIN: { own: 202, other: 403, none: 403 }, DEVELOPER: all(403) }],
  ['trigger deployment', { PLATFORM_ADMIN: all(409), TEAM_ADMIN: { own: 409, other: 403, none: 403 }, DEVELOPER: { own: 409, other: 403, none: 403 } }],
  ['read catalog', { PLATFORM_ADMIN: all(200), TEAM_ADMIN: all(200), DEVELOPER: all(200) }],
  ['read audit log', { PLATFORM_ADMIN: all(200), TEAM_ADMIN: all(200), DEVELOPER: all(403) }],
];

describe('RBAC matrix (route × role × own/other/no team)', () => {
  let team: { name: string };
  let service: { id: number };
  let env: { id: number };
  beforeAll(async () => {
    team = await createTeam(stack);
    service = await createService(stack, team.name);
    const e = await stack.http.post(`/api/services/${service.id}/environments`).set(auth(admin)).send({ name: 'dev', tier: 'dev', config: { simulate: { delay_ms: 600_000 } } });
    env = e.body; // stays provisioning (no worker here), so an allowed trigger answers 409 "not ready"
  });

  const call = async (action: string, token: string, teamName: string) => {
    const h = auth(token);
    switch (action) {
      case 'create team':
        return stack.http.post('/api/teams').set(h).send({ name: uniq('m') });
      case 'update team': {
        const t = await createTeam(stack);
        return stack.http.patch(`/api/teams/${(t as { id: number }).id}`).set(h).send({ display_name: 'x' });
      }
      case 'put policy':
        return stack.http.put(`/api/policies/${uniq('p').replace(/-/g, '_')}`).set(h).send({ kind: 'mandatory_tags', enabled: false, config: { tags: [] } });
      case 'register service':
        return stack.http.post('/api/services').set(h).send({ name: uniq('s'), team: teamName, tags: { owner: 'o', data_sensitivity: 'public' } });
      case 'update service':
        return stack.http.patch(`/api/services/${service.id}`).set(h).send({ description: uniq('d') });
      case 'provision environment':
        return stack.http.post(`/api/services/${service.id}/environments`).set(h).send({ name: uniq('e'), tier: 'dev', config: { simulate: { delay_ms: 600_000 } } });
      case 'trigger deployment':
        return stack.http.post(`/api/services/${service.id}/environments/${env.id}/deployments`).set(h).send({ version: '1.0.0' });
      case 'read catalog':
        return stack.http.get(`/api/services/${service.id}`).set(h);
      case 'read audit log':
        return stack.http.get('/api/audit-logs').set(h);
      default:
        throw new Error(action);
    }
  };

  const rows = MATRIX.flatMap(([action, expect]) =>
    (Object.keys(expect) as Role[]).flatMap((role) => (['own', 'other', 'none'] as Scope[]).map((scope) => [action, role, scope, expect[role][scope]] as const)),
  );

  it.each(rows)('%s as %s of %s team → %i', async (action, role, scope, status) => {
    const teams = scope === 'own' ? [team.name] : scope === 'other' ? ['someone-else'] : [];
    const sub = uniq('caller');
    const res = await call(action, tokenFor(sub, [role], teams), team.name);
    expect(res.status).toBe(status);
    if (status === 403) {
      expect(res.body.type).toBe('/problems/forbidden');
      expect(await stack.orm.em.fork().count(AuditLog, { actor: sub, outcome: 'denied' })).toBe(1);
    }
  });
});
