import fc from 'fast-check';
import { admin, auth, createService } from '../support/fixtures';
import { startStack, type TestStack } from '../support/stack';

let stack: TestStack;
let serviceId: number;
beforeAll(async () => {
  stack = await startStack();
  serviceId = (await createService(stack)).id;
});
afterAll(async () => {
  await stack.close();
});

/** Row counts of every table: bad input must leave them as they were. */
async function snapshot(): Promise<string> {
  const rows = await stack.orm.em.fork().getConnection()
    .execute(`select (select count(*) from team) t, (select count(*) from service) s, (select count(*) from environment) e,
      (select count(*) from deployment) d, (select count(*) from approval) a, (select max(updated_at)::text from platform_policy) p,
      (select max(updated_at)::text from service) su`);
  return JSON.stringify(rows[0]);
}

const anyJson = fc.jsonValue({ maxDepth: 4 });
const evil = fc.constantFrom(
  "'; drop table service; --",
  '<script>alert(1)</script>',
  '\u0000',
  '../../etc/passwd',
  '${jndi:ldap://x}',
  '\ud800',
  '%00',
  'a'.repeat(5000),
);
const body = fc.oneof(
  anyJson,
  fc.dictionary(
    fc.oneof(
      fc.constantFrom(
        'name',
        'tags',
        'team',
        'tier',
        'config',
        'version',
        'decision',
        'kind',
        'enabled',
        'action',
        'payload',
        'display_name',
      ),
      fc.string(),
    ),
    fc.oneof(anyJson, evil),
  ),
);

const targets: [string, string][] = [
  ['post', '/api/teams'],
  ['post', '/api/services'],
  ['patch', '/api/services/SID'],
  ['post', '/api/services/SID/environments'],
  ['post', '/api/services/SID/environments/1/deployments'],
  ['post', '/api/deployments/1/approvals'],
  ['post', '/api/deployments/1/cancel'],
  ['put', '/api/policies/mandatory_tags'],
  ['post', '/api/policies/evaluate'],
];

describe('property: bad input never yields a 5xx and changes nothing', () => {
  it.each(targets)('%s %s with arbitrary bodies', async (method, path) => {
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        // Only bodies that are invalid for this route: a valid one would (rightly) change things.
        const before = await snapshot();
        const url = path.replace('SID', String(serviceId));
        const req = (
          stack.http as unknown as Record<string, (u: string) => ReturnType<typeof stack.http.post>>
        )[method]!(url).set(auth(admin));
        const res = await req.set('Content-Type', 'application/json').send(JSON.stringify(b));
        expect(res.status).toBeLessThan(500);
        if (res.status >= 400) {
          expect(res.body.status).toBe(res.status);
          expect(res.body.correlation_id).toEqual(expect.any(String));
          expect(await snapshot()).toBe(before);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('arbitrary query strings on list routes never yield a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(
          fc.constantFrom('limit', 'cursor', 'team', 'tag.owner', 'action', 'since', 'until', 'x'),
          fc.oneof(fc.string(), evil),
        ),
        async (q) => {
          for (const path of [
            '/api/teams',
            '/api/services',
            '/api/audit-logs',
            `/api/services/${serviceId}/environments`,
          ]) {
            const res = await stack.http.get(path).query(q).set(auth(admin));
            expect(res.status).toBeLessThan(500);
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it('arbitrary path ids never yield a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string(), fc.integer(), fc.constant('99999999999999999999')),
        async (id) => {
          const seg = encodeURIComponent(String(id));
          for (const path of [
            `/api/services/${seg}`,
            `/api/teams/${seg}`,
            `/api/deployments/${seg}`,
            `/api/jobs/${seg}`,
          ]) {
            const res = await stack.http.get(path).set(auth(admin));
            expect(res.status).toBeLessThan(500);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('a path id or a limit is read only when written canonically; any other spelling is a 400 naming it', async () => {
    const canonical = (s: string, max: number) => /^[1-9][0-9]*$/.test(s) && Number(s) <= max;
    // Strings Number() would read as a number: signs, zeros, exponents, fractions, hex, spaces.
    const numberish = fc.oneof(
      fc.stringMatching(/^[ +-]?0{0,2}[0-9]{1,4}(\.0*)?(e[+-]?[0-9])? ?$/),
      fc.integer({ min: 0, max: 300 }).map((n) => `0x${n.toString(16)}`),
      fc.integer({ min: 1, max: 300 }).map(String),
    );
    await fc.assert(
      fc.asyncProperty(numberish, async (s) => {
        const seg = encodeURIComponent(s);
        const byId = await stack.http.get(`/api/services/${seg}`).set(auth(admin));
        if (canonical(s, 2_147_483_647)) expect([200, 404]).toContain(byId.status);
        else expect([byId.status, byId.body.violations?.[0]?.field]).toEqual([400, 'path.id']);
        const page = await stack.http.get(`/api/teams?limit=${seg}`).set(auth(admin));
        if (canonical(s, 200)) expect(page.status).toBe(200);
        else expect([page.status, page.body.violations?.[0]?.field]).toEqual([400, 'query.limit']);
      }),
      { numRuns: 60 },
    );
  });

  it('NUL characters in otherwise valid bodies are refused with 400', async () => {
    const before = await snapshot();
    const res = await stack.http
      .post('/api/services')
      .set(auth(admin))
      .send({ name: 'nul', tags: { owner: 'a\u0000b', data_sensitivity: 'public' } });
    expect(res.status).toBe(400);
    expect(await snapshot()).toBe(before);
  });

  it('deeply nested config is refused with 400, not a crash', async () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 2000; i++) deep = { a: deep };
    const res = await stack.http
      .post(`/api/services/${serviceId}/environments`)
      .set(auth(admin))
      .send({ name: 'deep', tier: 'dev', config: deep });
    expect(res.status).toBe(400);
  });
});
