/**
 * Strict input (issue 9): what the platform would keep differently from what was sent — a
 * `__proto__` key dropped, `1e400` stored as null, bad UTF-8 stored as U+FFFD, `0x10` read as 16 —
 * is refused with a 400 naming the field, and nothing is written. Also the metrics' method label and
 * the look-alike spellings of restricted config keys, through the HTTP layer.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { admin, auth, createService } from '../support/fixtures';
import { startStack, uniq, type TestStack } from '../support/stack';

let stack: TestStack;
let serviceId: number;
beforeAll(async () => {
  stack = await startStack();
  serviceId = (await createService(stack)).id;
});
afterAll(async () => {
  await stack.close();
});

/** Row counts of every table the API writes, and the last policy and service change: a refusal leaves them as they were. */
async function written(): Promise<Record<string, unknown>> {
  const rows = await stack.orm.em.fork().getConnection()
    .execute(`select (select count(*) from team) teams, (select count(*) from service) services, (select count(*) from environment) environments,
      (select count(*) from deployment) deployments, (select count(*) from approval) approvals, (select count(*) from audit_log) audit_entries,
      (select max(updated_at)::text from platform_policy) policy_changed, (select max(updated_at)::text from service) service_changed`);
  return rows[0] as Record<string, unknown>;
}

type Method = 'post' | 'put' | 'patch';

/**
 * Sends `raw` as the body, byte for byte, as application/json: a JS object could not carry
 * `__proto__` or `1e400`, and superagent would serialize a Buffer as `{"type":"Buffer",…}`.
 */
const sendRaw = (method: Method, path: string, raw: string | Buffer) =>
  stack.http[method](path.replace('SID', String(serviceId)))
    .set(auth(admin))
    .set('Content-Type', 'application/json')
    .serialize((body: unknown) => body as string)
    .send(raw);

/** Every violation names a field and says what to do. */
function expectRefused(
  res: { status: number; body: { status: number; violations?: { field: string; hint: string }[] } },
  fields: string[],
): void {
  expect(res.status).toBe(400);
  expect(res.body.status).toBe(400);
  expect(res.body.violations?.map((v) => v.field)).toEqual(fields);
  for (const v of res.body.violations ?? []) expect(v.hint.trim()).not.toBe('');
}

const TAGS = '"owner":"platform","data_sensitivity":"internal"';

describe('bodies: keys that would be dropped', () => {
  it.each<[string, Method, string, string, string[]]>([
    [
      'tags.__proto__ of a new service',
      'post',
      '/api/services',
      `{"name":"${uniq('p')}","tags":{${TAGS},"__proto__":"x"}}`,
      ['body.tags.__proto__'],
    ],
    [
      'tags.__proto__ of a service update',
      'patch',
      '/api/services/SID',
      `{"tags":{${TAGS},"__proto__":{"owner":"x"}}}`,
      ['body.tags.__proto__'],
    ],
    [
      'config.__proto__ of an environment',
      'post',
      '/api/services/SID/environments',
      '{"name":"dev","tier":"dev","config":{"__proto__":{"replicas":2}}}',
      ['body.config.__proto__'],
    ],
    [
      'a nested constructor key',
      'post',
      '/api/services/SID/environments',
      '{"name":"dev","tier":"dev","config":{"a":{"b":[{"constructor":1}]}}}',
      ['body.config.a.b[0].constructor'],
    ],
    [
      'a prototype key',
      'post',
      '/api/services/SID/environments',
      '{"name":"dev","tier":"dev","config":{"prototype":{}}}',
      ['body.config.prototype'],
    ],
    [
      'config.__proto__ of a deployment',
      'post',
      '/api/services/SID/environments/1/deployments',
      '{"version":"1.0.0","config":{"x":{"__proto__":{}}}}',
      ['body.config.x.__proto__'],
    ],
    [
      'a top-level __proto__',
      'post',
      '/api/teams',
      `{"name":"${uniq('t')}","__proto__":{"display_name":"x"}}`,
      ['body.__proto__'],
    ],
    [
      'config.__proto__ of a policy',
      'put',
      '/api/policies/restricted_config_keys',
      '{"kind":"restricted_config_keys","config":{"patterns":["token"],"__proto__":{"patterns":[]}}}',
      ['body.config.__proto__'],
    ],
    [
      'two of them, each named',
      'post',
      '/api/services/SID/environments',
      '{"name":"dev","tier":"dev","config":{"__proto__":1,"b":{"constructor":2}}}',
      ['body.config.__proto__', 'body.config.b.constructor'],
    ],
  ])('%s is a 400 naming it', async (_what, method, path, raw, fields) => {
    const before = await written();
    const res = await sendRaw(method, path, raw);
    expectRefused(res, fields);
    expect(await written()).toEqual(before);
  });

  it('still accepts keys that merely contain those words', async () => {
    const res = await sendRaw(
      'post',
      '/api/services/SID/environments',
      `{"name":"${uniq('e')}","tier":"dev","config":{"proto":1,"constructor_name":"x","my_prototype":true}}`,
    );
    expect(res.status).toBe(202);
    expect(res.body.config).toEqual({ proto: 1, constructor_name: 'x', my_prototype: true });
  });
});

describe('bodies: numbers beyond a double', () => {
  it.each<[string, Method, string, string, string[]]>([
    [
      '1e400 in config',
      'post',
      '/api/services/SID/environments',
      '{"name":"dev","tier":"dev","config":{"replicas":1e400}}',
      ['body.config.replicas'],
    ],
    [
      '-1e400 in config',
      'post',
      '/api/services/SID/environments',
      '{"name":"dev","tier":"dev","config":{"offset":-1e400}}',
      ['body.config.offset'],
    ],
    [
      '2e308 in an array',
      'post',
      '/api/services/SID/environments/1/deployments',
      '{"version":"1.0.0","config":{"weights":[1,2e308]}}',
      ['body.config.weights[1]'],
    ],
    [
      '1e999 as a policy count',
      'put',
      '/api/policies/prod_approvals',
      '{"kind":"prod_approvals","config":{"tier":"prod","required":1e999,"timeout":"24h"}}',
      ['body.config.required'],
    ],
    [
      'a huge id in an evaluation',
      'post',
      '/api/policies/evaluate',
      '{"action":"service.update","payload":{"service_id":1e400}}',
      ['body.payload.service_id'],
    ],
  ])('%s is a 400 naming it', async (_what, method, path, raw, fields) => {
    const before = await written();
    const res = await sendRaw(method, path, raw);
    expectRefused(res, fields);
    expect(await written()).toEqual(before);
  });

  it('still accepts large finite numbers as sent', async () => {
    const res = await sendRaw(
      'post',
      '/api/services/SID/environments',
      `{"name":"${uniq('e')}","tier":"dev","config":{"big":1e300,"small":-2.5e-300}}`,
    );
    expect(res.status).toBe(202);
    expect(res.body.config).toEqual({ big: 1e300, small: -2.5e-300 });
  });
});

describe('bodies: nesting', () => {
  it('half a million levels (1 MB) are a 400 naming where the limit was passed, not a stack overflow', async () => {
    const before = await written();
    const depth = 500_000;
    const res = await sendRaw('post', '/api/teams', `${'['.repeat(depth)}${']'.repeat(depth)}`);
    expect(res.status).toBe(400);
    expect(res.body.violations).toHaveLength(1);
    expect(res.body.violations[0].field).toBe(`body${'[0]'.repeat(64)}`);
    expect(await written()).toEqual(before);
  });
});

describe('bodies: bytes that are not UTF-8', () => {
  const team = (bad: number[]) =>
    Buffer.concat([
      Buffer.from(`{"name":"${uniq('t')}","display_name":"a`),
      Buffer.from(bad),
      Buffer.from('b"}'),
    ]);

  it.each<[string, number[]]>([
    ['a lone continuation byte', [0x80]],
    ['0xFF', [0xff]],
    ['an overlong slash', [0xc0, 0xaf]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
    ['a code point past U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ])('%s is a 400 naming the body, not a U+FFFD', async (_what, bad) => {
    const before = await written();
    const res = await sendRaw('post', '/api/teams', team(bad));
    expectRefused(res, ['body']);
    expect(res.body.violations[0].hint).toMatch(/UTF-8/);
    expect(await written()).toEqual(before);
  });

  it('still accepts well-formed multi-byte text', async () => {
    const res = await sendRaw(
      'post',
      '/api/teams',
      Buffer.from(`{"name":"${uniq('t')}","display_name":"Zahlungen – 支付 🚀"}`, 'utf8'),
    );
    expect(res.status).toBe(201);
    expect(res.body.display_name).toBe('Zahlungen – 支付 🚀');
  });
});

describe('path ids: one spelling per row', () => {
  // Each but the last three named the service under Number(): 0x.., 1e0, +, 0.., .0, spaces.
  const spellings: [string, (id: number) => string][] = [
    ['hex', (id) => `0x${id.toString(16)}`],
    ['an exponent', (id) => `${id}e0`],
    ['a plus sign', (id) => `+${id}`],
    ['a leading zero', (id) => `0${id}`],
    ['a decimal point', (id) => `${id}.0`],
    ['a leading space', (id) => `%20${id}`],
    ['a trailing space', (id) => `${id}%20`],
    [
      'full-width digits',
      (id) => encodeURIComponent(String.fromCodePoint(...[...String(id)].map((d) => 0xff10 + Number(d)))),
    ],
    ['zero', () => '0'],
    ['a minus sign', (id) => `-${id}`],
    ['a number past int4', () => '2147483648'],
  ];

  it('reads the canonical spelling', async () => {
    expect((await stack.http.get(`/api/services/${serviceId}`).set(auth(admin))).status).toBe(200);
    expect((await stack.http.get('/api/services/2147483647').set(auth(admin))).status).toBe(404);
  });

  it.each(spellings)('an id with %s is a 400 naming path.id', async (_what, spell) => {
    const res = await stack.http.get(`/api/services/${spell(serviceId)}`).set(auth(admin));
    expectRefused(res, ['path.id']);
    expect(res.body.violations[0].hint).toMatch(/decimal digits/);
  });

  it.each(spellings.slice(0, 6))(
    'a PATCH to an id with %s is a 400 and changes nothing',
    async (_what, spell) => {
      const before = await written();
      const res = await stack.http
        .patch(`/api/services/${spell(serviceId)}`)
        .set(auth(admin))
        .send({ description: 'changed' });
      expectRefused(res, ['path.id']);
      expect(await written()).toEqual(before);
    },
  );

  it('names the second id of a nested route', async () => {
    const res = await stack.http.get(`/api/services/${serviceId}/environments/01`).set(auth(admin));
    expectRefused(res, ['path.envId']);
  });
});

describe('query values and keys', () => {
  it.each([['0x10'], ['1e1'], ['+5'], ['05'], ['5.0'], ['%205'], ['5%20'], ['0'], ['201'], ['-1'], ['']])(
    '?limit=%s is a 400 naming query.limit',
    async (limit) => {
      const res = await stack.http.get(`/api/teams?limit=${limit}`).set(auth(admin));
      expectRefused(res, ['query.limit']);
    },
  );

  it('takes canonical limits and the default', async () => {
    for (const limit of ['1', '50', '200']) {
      const res = await stack.http.get(`/api/teams?limit=${limit}`).set(auth(admin));
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(Number(limit));
    }
    expect((await stack.http.get('/api/teams').set(auth(admin))).status).toBe(200);
  });

  it.each([
    ['/api/services?tag.__proto__=x'],
    ['/api/services?tag.constructor=x'],
    ['/api/services?tag.prototype=x'],
    ['/api/audit-logs?__proto__=x'],
  ])('%s is a 400 naming the parameter, not an unfiltered list', async (path) => {
    const res = await stack.http.get(path).set(auth(admin));
    expectRefused(res, [`query.${path.split('?')[1]!.split('=')[0]}`]);
  });

  it('still filters by an ordinary tag', async () => {
    const res = await stack.http.get('/api/services?tag.owner=platform').set(auth(admin));
    expect(res.status).toBe(200);
    expect(res.body.items.map((s: { id: number }) => s.id)).toContain(serviceId);
    expect(
      (await stack.http.get('/api/services?tag.owner=nobody-has-this').set(auth(admin))).body.items,
    ).toEqual([]);
  });
});

describe('policy durations', () => {
  const put = (timeout: unknown) =>
    stack.http
      .put('/api/policies/prod_approvals')
      .set(auth(admin))
      .send({ kind: 'prod_approvals', enabled: true, config: { tier: 'prod', required: 1, timeout } });

  it.each([['0s'], ['0.5s'], ['0ms'], ['999ms'], [0], ['366d'], ['9999999d']])(
    'a timeout of %j is a 400 naming config.timeout',
    async (timeout) => {
      const before = await written();
      const res = await put(timeout);
      expectRefused(res, ['body.config.timeout']);
      expect(await written()).toEqual(before);
    },
  );

  it('takes one second and a year', async () => {
    for (const timeout of ['1s', '1000ms', '365d', '24h']) {
      const res = await put(timeout);
      expect(res.status).toBe(200);
      expect(res.body.config.timeout).toBe(timeout);
    }
  });
});

describe('restricted config keys spelled with look-alike letters', () => {
  it.each([
    ['p\u0430ssword', 'Cyrillic а'],
    ['\u0455ecret', 'Cyrillic ѕ'],
    ['t\u03bfken', 'Greek ο'],
    ['db_\u0420\u0410SSWORD', 'Cyrillic Р and А'],
    ['\u0422OKEN', 'Cyrillic Т'],
  ])(
    'config.%s (%s) is a guardrail violation naming the key as sent, its value redacted in the audit entry',
    async (key) => {
      const before = await written();
      const res = await stack.http
        .post(`/api/services/${serviceId}/environments`)
        .set(auth(admin))
        .send({ name: uniq('e'), tier: 'dev', config: { replicas: 2, nested: { [key]: 'hunter2-value' } } });
      expect(res.status).toBe(400);
      expect(res.body.violations.map((v: { rule: string; field: string }) => [v.rule, v.field])).toEqual([
        ['restricted_config_keys', `config.nested.${key}`],
      ]);
      const after = await written();
      expect({ ...after, audit_entries: before['audit_entries'] }).toEqual(before);
      const [entry] = await stack.orm.em
        .fork()
        .getConnection()
        .execute(
          `select details from audit_log where action = 'environment.create' and outcome = 'violation' order by id desc limit 1`,
        );
      expect(JSON.stringify(entry.details)).not.toContain('hunter2-value');
      expect(entry.details.attempted.config.nested[key]).toBe('[redacted]');
    },
  );
});

describe('metrics', () => {
  /** Sends a request with any method Node's parser knows (supertest's typings list only some). */
  const call = (method: string) =>
    new Promise<number>((resolve, reject) => {
      const { port } = stack.server.address() as AddressInfo;
      const req = http.request(
        { host: '127.0.0.1', port, method, path: '/api/services', headers: auth(admin) },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });

  it('labels methods the API does not serve as other', async () => {
    const odd = ['PROPFIND', 'MKCOL', 'LOCK', 'PURGE', 'SEARCH', 'REPORT'];
    for (const method of odd) expect(await call(method)).toBeGreaterThanOrEqual(400);
    expect(await call('GET')).toBe(200);
    const text = (await stack.http.get('/api/metrics')).text;
    const methods = new Set(
      [...text.matchAll(/^idp_http_request_duration_seconds_count\{[^}]*method="([^"]*)"/gm)].map(
        (m) => m[1],
      ),
    );
    for (const method of odd) expect(methods).not.toContain(method);
    expect(methods).toContain('other');
    expect(methods).toContain('GET');
    expect(
      [...methods].every((m) =>
        ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'other'].includes(m!),
      ),
    ).toBe(true);
  });
});
