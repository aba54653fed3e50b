import { generateKeyPairSync, createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import jwt from 'jsonwebtoken';
import type { Response } from 'supertest';
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

/** Words of jsonwebtoken and koa-jwt that a 401 once quoted; ours never contain them. */
const LIBRARY_TEXT =
  /jwt (malformed|expired|not active|must|signature|audience|issuer|subject)|invalid (signature|algorithm|token)|secretOrPublicKey|Bad Authorization header|Authentication Error|expected:/i;
const CHALLENGE = 'Bearer realm="idp"';
const INVALID_TOKEN = 'Bearer realm="idp", error="invalid_token"';

/** Asserts a 401 problem document with our detail and the RFC 6750 challenge. */
function expectUnauthenticated(res: Response, detail: string | RegExp, challenge = INVALID_TOKEN): void {
  expect(res.status).toBe(401);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status: 401, type: '/problems/unauthenticated', title: 'Unauthorized' });
  if (typeof detail === 'string') expect(res.body.detail).toBe(detail);
  else expect(res.body.detail).toMatch(detail);
  expect(res.body.detail).not.toMatch(LIBRARY_TEXT);
  expect(res.headers['www-authenticate']).toBe(challenge);
}

/** POSTs a new team with `authorization` and asserts it was not created (nothing changed). */
async function postTeam(authorization: string | undefined): Promise<Response> {
  const name = uniq('attack');
  const req = stack.http.post('/api/teams');
  const res = await (authorization === undefined ? req : req.set('Authorization', authorization)).send({
    name,
  });
  expect(
    (await stack.http.get('/api/teams?limit=200').set(auth(admin))).body.items.map(
      (t: { name: string }) => t.name,
    ),
  ).not.toContain(name);
  return res;
}

const hs256 = (payload: object, header?: object) =>
  jwt.sign(payload, TEST_SECRET, {
    algorithm: 'HS256',
    ...(header ? { header: { alg: 'HS256', ...header } as jwt.JwtHeader } : {}),
  });

/** A JWS signed with TEST_SECRET by hand, for payloads jsonwebtoken refuses to sign. */
const handSigned = (payload: object, header: object = { alg: 'HS256', typ: 'JWT' }) => {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', TEST_SECRET).update(input).digest('base64url')}`;
};

const SIGNATURE_INVALID = "the token's signature is invalid";
const ALG_NOT_ACCEPTED = "the token's algorithm is not accepted (accepted: HS256)";
const MALFORMED = 'the token is malformed (expected a signed JWT: header.payload.signature)';
const SUB_RULE = /^the token's sub claim must be 1-255 printable characters/;

describe('JWT attacks get 401 with our words and a challenge, and change nothing', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const cases: [string, () => string, string | RegExp][] = [
    [
      'alg none',
      () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, exp: now() + 600 })}.`,
      ALG_NOT_ACCEPTED,
    ],
    [
      'wrong key',
      () =>
        jwt.sign(claims, 'another-secret-that-is-long-enough-0123456789', {
          algorithm: 'HS256',
          expiresIn: '1h',
        }),
      SIGNATURE_INVALID,
    ],
    [
      'RS256 when HS256 is pinned',
      () => jwt.sign(claims, privateKey, { algorithm: 'RS256', expiresIn: '1h' }),
      ALG_NOT_ACCEPTED,
    ],
    [
      'HS256 signed with the public key (confusion)',
      () => {
        const h = b64({ alg: 'HS256', typ: 'JWT' });
        const p = b64({ ...claims, exp: now() + 600 });
        return `${h}.${p}.${createHmac('sha256', pem).update(`${h}.${p}`).digest('base64url')}`;
      },
      SIGNATURE_INVALID,
    ],
    ['expired', () => hs256({ ...claims, exp: now() - 60 }), 'the token has expired'],
    ['no exp', () => hs256(claims), 'the token has no numeric exp claim; every token must expire'],
    [
      'exp not a number',
      () => handSigned({ ...claims, exp: 'tomorrow' }),
      'the token has no numeric exp claim; every token must expire',
    ],
    [
      'not yet valid',
      () => jwt.sign({ ...claims, nbf: now() + 3600 }, TEST_SECRET, { algorithm: 'HS256', expiresIn: '2h' }),
      /^the token is not valid yet/,
    ],
    [
      'unknown role',
      () => jwt.sign({ ...claims, roles: ['ROOT'] }, TEST_SECRET, { algorithm: 'HS256', expiresIn: '1h' }),
      "the token's roles claim must list 1-3 of PLATFORM_ADMIN, TEAM_ADMIN, DEVELOPER",
    ],
    [
      'no sub',
      () => jwt.sign({ roles: ['PLATFORM_ADMIN'] }, TEST_SECRET, { algorithm: 'HS256', expiresIn: '1h' }),
      SUB_RULE,
    ],
    [
      'tampered payload',
      () => {
        const [h, , s] = tokenFor('dev', ['DEVELOPER']).split('.');
        return `${h}.${b64({ ...claims, exp: now() + 600 })}.${s}`;
      },
      SIGNATURE_INVALID,
    ],
    ['garbage', () => 'not.a.jwt', MALFORMED],
    ['two segments', () => tokenFor('dev', ['DEVELOPER']).split('.').slice(0, 2).join('.'), MALFORMED],
    [
      'payload not JSON',
      () => `${b64({ alg: 'HS256' })}.${Buffer.from('alice').toString('base64url')}.c2ln`,
      MALFORMED,
    ],
  ];

  it.each(cases)('%s', async (_name, make, detail) => {
    expectUnauthenticated(await postTeam(`Bearer ${make()}`), detail);
  });

  it('a request without a token gets the challenge without an error code (RFC 6750 §3.1)', async () => {
    expectUnauthenticated(
      await postTeam(undefined),
      'this route needs a bearer token: send Authorization: Bearer <token>',
      CHALLENGE,
    );
    expectUnauthenticated(
      await postTeam('Basic YWxpY2U6c2VjcmV0'),
      'this route needs a bearer token: send Authorization: Bearer <token>',
      CHALLENGE,
    );
  });

  it.each([
    ['the scheme alone', 'Bearer'],
    ['two tokens', `Bearer ${admin} ${admin}`],
    ['a token with characters outside b64token', 'Bearer abc$def.ghi.jkl'],
  ])('an Authorization header with %s is an invalid token', async (_name, header) => {
    expectUnauthenticated(
      await postTeam(header),
      'the Authorization header must be "Bearer <token>" with one token',
    );
  });

  it('refuses a huge token before reading it (431)', async () => {
    const huge = jwt.sign(
      { ...claims, pad: 'x'.repeat(200_000) },
      'wrong-wrong-wrong-wrong-wrong-wrong-wrong',
      { algorithm: 'HS256', expiresIn: '1h' },
    );
    expect((await postTeam(`Bearer ${huge}`)).status).toBe(431);
  });

  it('checks iss and aud when configured', async () => {
    const scoped = await startStack({ env: { JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'idp-api' } });
    try {
      const sign = (extra: object) =>
        jwt.sign({ ...claims, ...extra }, TEST_SECRET, { algorithm: 'HS256', expiresIn: '1h' });
      const aud = "the token's aud claim does not name this API";
      const iss = "the token's iss claim does not name the trusted issuer";
      expectUnauthenticated(await scoped.http.get('/api/teams').set(auth(sign({}))), aud);
      expectUnauthenticated(
        await scoped.http.get('/api/teams').set(auth(sign({ iss: 'https://evil', aud: 'idp-api' }))),
        iss,
      );
      expectUnauthenticated(
        await scoped.http.get('/api/teams').set(auth(sign({ iss: 'https://idp.example', aud: 'other' }))),
        aud,
      );
      expect(
        (await scoped.http.get('/api/teams').set(auth(sign({ iss: 'https://idp.example', aud: 'idp-api' }))))
          .status,
      ).toBe(200);
    } finally {
      await scoped.close();
    }
  });

  it('counts auth failures in a metric', async () => {
    await stack.http.get('/api/teams').set('Authorization', 'Bearer nope');
    await stack.http.get('/api/teams');
    const metrics = await stack.http.get('/api/metrics');
    expect(metrics.text).toMatch(/idp_auth_failures_total\{status="401",reason="token"\} [1-9]/);
    expect(metrics.text).toMatch(/idp_auth_failures_total\{status="401",reason="missing"\} [1-9]/);
  });
});

describe('a sub names exactly one person', () => {
  const sign = (sub: unknown) => hs256({ sub, roles: ['PLATFORM_ADMIN'], teams: [], exp: now() + 600 });

  // Each of these would be a second identity that looks like (or hides inside) another one, or a
  // string PostgreSQL cannot store (NUL made the audit insert fail: a 500, the refusal unaudited).
  it.each([
    ['NUL', 'ali\u0000ce'],
    ['a trailing space ("alice " is not alice)', 'alice '],
    ['a leading space', ' alice'],
    ['only spaces', '   '],
    ['empty', ''],
    ['a tab', 'ali\tce'],
    ['a newline', 'alice\n'],
    ['DEL', 'alice\u007f'],
    ['a zero-width space (Cf)', 'al\u200bice'],
    ['a right-to-left override (Cf)', 'ali\u202ece'],
    ['a byte order mark', '\ufeffalice'],
    ['a soft hyphen', 'al\u00adice'],
    ['a line separator', 'ali\u2028ce'],
    ['a paragraph separator', 'ali\u2029ce'],
    ['a no-break space', 'al\u00a0ice'],
    ['an ideographic space at the end', 'alice\u3000'],
    ['an unpaired surrogate', 'alice\ud800'],
    ['a private-use character', 'alice\ue000'],
    ['a decomposed é (not NFC)', 'jose\u0301'],
    ['256 characters', 'a'.repeat(256)],
    ['a number', 42],
    ['an object', { name: 'alice' }],
  ])('a sub with %s is refused', async (_name, sub) => {
    expectUnauthenticated(await postTeam(`Bearer ${sign(sub)}`), SUB_RULE);
  });

  it.each([
    ['plain', 'alice'],
    ['an inner space', 'alice smith'],
    ['an apostrophe', "o'brien"],
    ['a precomposed é', 'jos\u00e9'],
    ['CJK', '李雷'],
    ['an emoji (a surrogate pair)', 'fox \u{1F98A}'],
    ['an e-mail address', 'alice@example.com'],
    ['255 characters', 'a'.repeat(255)],
  ])('a sub with %s is accepted', async (_name, sub) => {
    const res = await stack.http.get('/api/teams').set(auth(sign(sub)));
    expect(res.status).toBe(200);
  });

  it('a NUL in a teams entry is refused too', async () => {
    const token = hs256({
      sub: uniq('lead'),
      roles: ['TEAM_ADMIN'],
      teams: ['pay\u0000ments'],
      exp: now() + 600,
    });
    expectUnauthenticated(
      await stack.http.get('/api/audit-logs').set(auth(token)),
      /^the token's teams claim must be/,
    );
  });
});

describe('iat and crit', () => {
  const base = () => ({ ...claims, sub: uniq('clock'), exp: now() + 3600 });

  it.each([
    ['ten years ahead', 10 * 365 * 24 * 3600],
    ['two minutes ahead', 120],
    ['90 seconds ahead', 90],
  ])('an iat %s is refused', async (_name, ahead) => {
    expectUnauthenticated(
      await postTeam(`Bearer ${hs256({ ...base(), iat: now() + ahead })}`),
      "the token's iat claim lies in the future (issued later than now)",
    );
  });

  it('an iat that is not a number is refused', async () => {
    expectUnauthenticated(
      await postTeam(`Bearer ${handSigned({ ...base(), iat: 'now' })}`),
      "the token's iat claim must be a number of seconds",
    );
  });

  it.each([
    ['30 seconds ahead (clock skew)', 30],
    ['now', 0],
    ['an hour ago', -3600],
  ])('an iat %s is accepted', async (_name, offset) => {
    const res = await stack.http.get('/api/teams').set(auth(hs256({ ...base(), iat: now() + offset })));
    expect(res.status).toBe(200);
  });

  // RFC 7515 §4.1.11: we understand no extension, so every crit is refused, whatever it lists.
  it.each([
    ['a registered claim name', { crit: ['exp'] }],
    ['an unknown extension', { crit: ['urn:example:unknown'], 'urn:example:unknown': true }],
    ['b64 (RFC 7797)', { crit: ['b64'], b64: true }],
    ['nothing (an empty list)', { crit: [] }],
    ['a string instead of a list', { crit: 'exp' }],
  ])('a crit header naming %s is refused', async (_name, header) => {
    const token = hs256(base(), header);
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toHaveProperty('crit');
    expectUnauthenticated(
      await postTeam(`Bearer ${token}`),
      'the token names critical header extensions (crit); none is supported',
    );
  });
});

describe('keys from JWT_JWKS_URI', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = 'key-1';
  let jwks: Server;
  let jwksStack: TestStack;
  beforeAll(async () => {
    const body = JSON.stringify({
      keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }],
    });
    jwks = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(body));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    jwksStack = await startStack({
      env: { JWT_JWKS_URI: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json` },
    });
  });
  afterAll(async () => {
    await jwksStack?.close();
    await new Promise((r) => jwks?.close(r));
  });
  const rs256 = (keyid: string) =>
    jwt.sign({ ...claims, exp: now() + 600 }, privateKey, { algorithm: 'RS256', keyid });

  it('accepts an RS256 token signed with a key of the set', async () => {
    expect((await jwksStack.http.get('/api/teams').set(auth(rs256(kid)))).status).toBe(200);
  });

  it('refuses a token whose kid is not in the set, and HS256 (algorithm confusion)', async () => {
    expectUnauthenticated(
      await jwksStack.http.get('/api/teams').set(auth(rs256('key-2'))),
      "the token's signing key (kid) is not one of the issuer's keys",
    );
    expectUnauthenticated(
      await jwksStack.http.get('/api/teams').set(auth(tokenFor('mallory', ['PLATFORM_ADMIN']))),
      "the token's algorithm is not accepted (accepted: RS256, ES256)",
    );
  });

  it('answers 503, not 401, when the key set cannot be fetched', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const down = await startStack({ env: { JWT_JWKS_URI: `http://127.0.0.1:${port}/jwks.json` } });
    try {
      const res = await down.http.get('/api/teams').set(auth(rs256(kid)));
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({
        type: '/problems/service-unavailable',
        detail: 'the signing keys could not be fetched from the key set (JWT_JWKS_URI); retry later',
      });
    } finally {
      await down.close();
    }
  });
});

/** Sends raw bytes on one connection and reads one HTTP/1.1 response (status, headers, body). */
class RawConnection {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiting?.();
    });
  }

  static async open(baseUrl: string): Promise<RawConnection> {
    const url = new URL(baseUrl);
    const socket = connect(Number(url.port), url.hostname);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawConnection(socket);
  }

  write(text: string): void {
    this.socket.write(text);
  }

  get closed(): boolean {
    return this.socket.destroyed || this.socket.readableEnded;
  }

  /** The next complete response (Content-Length framed), or a failure after `timeoutMs`. */
  async response(
    timeoutMs = 5000,
  ): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end >= 0) {
        const [statusLine, ...lines] = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
        const headers = Object.fromEntries(
          lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
        );
        const length = Number(headers['content-length'] ?? 0);
        if (this.buffer.length >= end + 4 + length) {
          const body = this.buffer.subarray(end + 4, end + 4 + length).toString('utf8');
          this.buffer = this.buffer.subarray(end + 4 + length);
          return { status: Number(statusLine!.split(' ')[1]), headers, body };
        }
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no complete response within ${timeoutMs} ms (got ${JSON.stringify(this.buffer.toString('latin1').slice(0, 200))})`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('authentication comes before the body', () => {
  const request = (method: string, path: string, headers: Record<string, string>, body = '') =>
    [
      `${method} ${path} HTTP/1.1`,
      'Host: idp.test',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      '',
      body,
    ].join('\r\n');

  it('answers 401 without waiting for a body it would have to read', async () => {
    const conn = await RawConnection.open(stack.baseUrl);
    try {
      // The headers promise 100 bytes and none follow: a server that reads the body first waits.
      conn.write(
        request('POST', '/api/teams', {
          Authorization: 'Bearer nope',
          'Content-Type': 'application/json',
          'Content-Length': '100',
        }),
      );
      const refused = await conn.response();
      expect(refused.status).toBe(401);
      expect(refused.headers['www-authenticate']).toBe(INVALID_TOKEN);
      expect(JSON.parse(refused.body)).toMatchObject({ status: 401, detail: MALFORMED });
      expect(refused.headers['connection']).not.toBe('close');

      // The keep-alive connection still works: the late body is drained, not read as a request.
      conn.write(`{"name":"${'x'.repeat(89)}"}`);
      conn.write(request('GET', '/api/teams?limit=1', { Authorization: `Bearer ${admin}` }));
      const next = await conn.response();
      expect(next.status).toBe(200);
      expect(JSON.parse(next.body)).toHaveProperty('items');
      expect(conn.closed).toBe(false);
    } finally {
      conn.close();
    }
  });

  it('answers 401, not 413, to an unauthenticated body declared larger than the limit, and closes the connection', async () => {
    const conn = await RawConnection.open(stack.baseUrl);
    try {
      conn.write(
        request('POST', '/api/teams', {
          'Content-Type': 'application/json',
          'Content-Length': String(50 * 1024 * 1024),
        }),
      );
      const refused = await conn.response();
      expect(refused.status).toBe(401);
      expect(refused.headers['www-authenticate']).toBe(CHALLENGE);
      // The 50 MiB are never read: the connection is closed rather than drained.
      expect(refused.headers['connection']).toBe('close');
    } finally {
      conn.close();
    }
  });

  it('answers 401, not 400, to an unauthenticated body that is not JSON', async () => {
    const res = await stack.http
      .post('/api/teams')
      .set('Authorization', 'Bearer nope')
      .set('Content-Type', 'application/json')
      .send('{"name": not json');
    expectUnauthenticated(res, MALFORMED);
  });

  it('gives an unauthenticated POST with a large body a clean 401, and reuses the connection', async () => {
    const conn = await RawConnection.open(stack.baseUrl);
    try {
      const body = JSON.stringify({ name: uniq('big'), description: 'x'.repeat(512 * 1024) });
      conn.write(
        request(
          'POST',
          '/api/teams',
          { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) },
          body,
        ),
      );
      const refused = await conn.response();
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.body)).toMatchObject({ type: '/problems/unauthenticated' });
      conn.write(request('GET', '/api/teams?limit=1', { Authorization: `Bearer ${admin}` }));
      expect((await conn.response()).status).toBe(200);
    } finally {
      conn.close();
    }
  });

  it('still reads the body of an authenticated request', async () => {
    const name = uniq('team');
    const res = await stack.http.post('/api/teams').set(auth(admin)).send({ name });
    expect(res.status).toBe(201);
    expect(res.body.name).toBe(name);
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
  [
    'register service',
    { PLATFORM_ADMIN: all(201), TEAM_ADMIN: { own: 201, other: 403, none: 403 }, DEVELOPER: all(403) },
  ],
  [
    'update service',
    { PLATFORM_ADMIN: all(200), TEAM_ADMIN: { own: 200, other: 403, none: 403 }, DEVELOPER: all(403) },
  ],
  [
    'provision environment',
    { PLATFORM_ADMIN: all(202), TEAM_ADMIN: { own: 202, other: 403, none: 403 }, DEVELOPER: all(403) },
  ],
  [
    'trigger deployment',
    {
      PLATFORM_ADMIN: all(409),
      TEAM_ADMIN: { own: 409, other: 403, none: 403 },
      DEVELOPER: { own: 409, other: 403, none: 403 },
    },
  ],
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
    const e = await stack.http
      .post(`/api/services/${service.id}/environments`)
      .set(auth(admin))
      .send({ name: 'dev', tier: 'dev', config: { simulate: { delay_ms: 600_000 } } });
    env = e.body; // stays provisioning (no worker here), so an allowed trigger answers 409 "not ready"
  });

  const call = async (action: string, token: string, teamName: string) => {
    const h = auth(token);
    switch (action) {
      case 'create team':
        return stack.http
          .post('/api/teams')
          .set(h)
          .send({ name: uniq('m') });
      case 'update team': {
        const t = await createTeam(stack);
        return stack.http
          .patch(`/api/teams/${(t as { id: number }).id}`)
          .set(h)
          .send({ display_name: 'x' });
      }
      case 'put policy':
        return stack.http
          .put(`/api/policies/${uniq('p').replace(/-/g, '_')}`)
          .set(h)
          .send({ kind: 'mandatory_tags', enabled: false, config: { tags: [] } });
      case 'register service':
        return stack.http
          .post('/api/services')
          .set(h)
          .send({ name: uniq('s'), team: teamName, tags: { owner: 'o', data_sensitivity: 'public' } });
      case 'update service':
        return stack.http
          .patch(`/api/services/${service.id}`)
          .set(h)
          .send({ description: uniq('d') });
      case 'provision environment':
        return stack.http
          .post(`/api/services/${service.id}/environments`)
          .set(h)
          .send({ name: uniq('e'), tier: 'dev', config: { simulate: { delay_ms: 600_000 } } });
      case 'trigger deployment':
        return stack.http
          .post(`/api/services/${service.id}/environments/${env.id}/deployments`)
          .set(h)
          .send({ version: '1.0.0' });
      case 'read catalog':
        return stack.http.get(`/api/services/${service.id}`).set(h);
      case 'read audit log':
        return stack.http.get('/api/audit-logs').set(h);
      default:
        throw new Error(action);
    }
  };

  const rows = MATRIX.flatMap(([action, expect]) =>
    (Object.keys(expect) as Role[]).flatMap((role) =>
      (['own', 'other', 'none'] as Scope[]).map(
        (scope) => [action, role, scope, expect[role][scope]] as const,
      ),
    ),
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
