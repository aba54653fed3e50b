/**
 * The rest of the security suite (issue 5): object-level access across teams, injection strings as
 * data, forged correlation ids, tokens and restricted values kept out of logs and the audit log, and
 * one audit entry per state-changing call. JWT attacks and the RBAC matrix live in auth.test.ts,
 * fuzzing in fuzz.test.ts.
 *
 * One stack with a worker serves the whole file. Its logger is the real `createLogger` at debug level
 * with only its destination swapped for memory, so tests read every line the API and the worker wrote.
 */
jest.mock('../../src/logger', () => {
  const actual = jest.requireActual<typeof import('../../src/logger')>('../../src/logger');
  const { symbols } = jest.requireActual<typeof import('pino')>('pino');
  const lines: string[] = [];
  return {
    ...actual,
    capturedLines: lines,
    createLogger: (...args: Parameters<typeof actual.createLogger>) => {
      const logger = actual.createLogger(...args);
      // Production's level and redaction stay; pino writes through this symbol, children inherit it.
      (logger as unknown as Record<symbol, unknown>)[symbols.streamSym] = { write: (line: string) => lines.push(line) };
      return logger;
    },
  };
});

import { randomUUID } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import { Client as PgClient } from 'pg';
import type { Response, Test } from 'supertest';
import type { Role } from '../../src/domain/types';
import { admin, auth, createService, createTeam, readyEnvironment, waitForStatus } from '../support/fixtures';
import { TEST_SECRET, eventually, startStack, tokenFor, uniq, type TestStack } from '../support/stack';

const { capturedLines } = jest.requireMock<{ capturedLines: string[] }>('../../src/logger');

let stack: TestStack;
/** A second connection with real bind parameters: the oracle for filters, independent of the ORM under test. */
let pg: PgClient;
beforeAll(async () => {
  stack = await startStack({ worker: true, env: { LOG_LEVEL: 'debug' } });
  pg = new PgClient({ connectionString: stack.databaseUrl });
  await pg.connect();
});
afterAll(async () => {
  await pg?.end();
  await stack?.close();
});

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/** Every token this file sends, so that the log scan can look for each of them. */
const issued = new Set<string>([admin]);

/** A caller: its claims and a token the file remembers. */
interface Caller {
  sub: string;
  roles: Role[];
  teams: string[];
  token: string;
}

/** A caller with a fresh subject, whose token joins {@link issued}. */
function caller(role: Role | Role[], teams: string[] = []): Caller {
  const roles = Array.isArray(role) ? role : [role];
  const sub = uniq(roles.join('+').toLowerCase());
  const token = tokenFor(sub, roles, teams);
  issued.add(token);
  return { sub, roles, teams, token };
}

const get = (url: string, token = admin): Test => stack.http.get(url).set(auth(token));
const send = (method: 'post' | 'patch' | 'put', url: string, body?: object, token = admin): Test => {
  const req = stack.http[method](url).set(auth(token));
  return body === undefined ? req : req.send(body);
};

const TAGS = { owner: 'security-suite', data_sensitivity: 'internal' };
const ENDED = ['succeeded', 'failed', 'rejected', 'expired', 'cancelled'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const environmentsUrl = (serviceId: number) => `/api/services/${serviceId}/environments`;
const deploymentsUrl = (serviceId: number, envId: number) => `${environmentsUrl(serviceId)}/${envId}/deployments`;

/** Triggers a deployment as `token`, expects 202 and waits until it reaches one of `statuses`. */
async function deploy(token: string, serviceId: number, envId: number, body: object, statuses: string | string[]) {
  const res = await send('post', deploymentsUrl(serviceId, envId), body, token);
  if (res.status !== 202) throw new Error(`deploy: ${res.status} ${JSON.stringify(res.body)}`);
  return waitForStatus(stack, res.body.id, statuses);
}

/** The newest deployment of an environment, if it has one. */
async function latestDeployment(serviceId: number, envId: number): Promise<{ id: number; status: string } | undefined> {
  return (await get(`${deploymentsUrl(serviceId, envId)}?limit=1`)).body.items[0];
}

/** The tables whose rows only a 201/202 may add (the audit log records refusals too). */
const TABLES = ['team', 'service', 'environment', 'deployment', 'approval', 'platform_policy'] as const;
type Table = (typeof TABLES)[number];

/** Row counts of those tables, by an independent connection. */
async function rowCounts(): Promise<Record<Table, number>> {
  const { rows } = await pg.query(`select ${TABLES.map((t) => `(select count(*)::int from ${t}) as ${t}`).join(', ')}`);
  return rows[0];
}

/** A digest of every row of those tables: a refused write leaves it as it was. */
async function rowDigest(): Promise<Record<Table, string>> {
  const digests = TABLES.map((t) => `(select md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from ${t} x) as ${t}`);
  const { rows } = await pg.query(`select ${digests.join(', ')}`);
  return rows[0];
}

const lastAuditId = async (): Promise<number> => (await pg.query('select coalesce(max(id), 0)::int as id from audit_log')).rows[0].id;

/** Nothing is a 5xx, and every 4xx is a problem document carrying the request's correlation id. */
function expectCleanAnswer(res: Response): void {
  expect(res.status).toBeLessThan(500);
  if (res.status < 400) return;
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toEqual(
    expect.objectContaining({
      type: expect.stringMatching(/^\/problems\//),
      title: expect.any(String),
      status: res.status,
      detail: expect.any(String),
      correlation_id: res.headers['x-correlation-id'],
    }),
  );
}

/** Status and, for a problem, its detail: a failed comparison then says why the API answered so. */
const outcome = (res: Response) => ({ status: res.status, detail: res.status >= 400 ? res.body.detail : undefined });

/** What two answers to the same request share: all but a problem's correlation id. */
const comparable = (res: Response): unknown => [res.status, res.status >= 400 ? { ...res.body, correlation_id: undefined } : res.body];

/** Every line the API and the worker logged so far, parsed. */
const logLines = (): Record<string, unknown>[] => capturedLines.map((line) => JSON.parse(line) as Record<string, unknown>);

// ---------------------------------------------------------------------------------------------
// 1. Object-level access
// ---------------------------------------------------------------------------------------------

describe('object-level access: callers of team A walking the ids of team B', () => {
  const A = uniq('team-a');
  const B = uniq('team-b');
  /** Carried by B's service and deployments: no refusal may show it to A. */
  const MARK = uniq('b-private');
  const WALKERS: [string, Caller][] = [
    ['TEAM_ADMIN of A', caller('TEAM_ADMIN', [A])],
    ['DEVELOPER of A', caller('DEVELOPER', [A])],
    // Team claims that only look like B's: exact names are compared, nothing is normalised.
    ['TEAM_ADMIN+DEVELOPER of look-alikes of B', caller(['TEAM_ADMIN', 'DEVELOPER'], [B.toUpperCase(), ` ${B}`, `${B}\u200b`])],
  ];
  const b = { teamId: 0, serviceId: 0, envIds: [] as number[], deploymentIds: [] as number[], jobIds: [] as string[] };
  const a = { serviceId: 0 };
  /** Ids within 5 of B's, minus those of A's own rows (A may rightly change those). */
  const walk = { teams: [] as number[], services: [] as number[], environments: [] as number[], deployments: [] as number[] };

  const around = (ids: number[], mine: number[]): number[] =>
    [...new Set(ids.flatMap((id) => Array.from({ length: 11 }, (_, i) => id - 5 + i)))].filter((id) => id > 0 && !mine.includes(id));

  beforeAll(async () => {
    const [teamA, teamB] = await Promise.all([createTeam(stack, A), createTeam(stack, B)]);
    b.teamId = teamB.id;
    a.serviceId = (await createService(stack, A)).id;
    const service = await send('post', '/api/services', { name: uniq('b-svc'), team: B, description: MARK, tags: { owner: MARK, data_sensitivity: 'confidential' } });
    expect(service.status).toBe(201);
    b.serviceId = service.body.id;
    const [dev, staging, prod, aDev] = await Promise.all([
      readyEnvironment(stack, b.serviceId, 'dev'),
      readyEnvironment(stack, b.serviceId, 'staging'),
      readyEnvironment(stack, b.serviceId, 'prod'),
      readyEnvironment(stack, a.serviceId, 'dev'),
    ]);
    b.envIds = [dev.id, staging.id, prod.id];
    // B's deployments ended and active (waiting for an approval: a state that holds still).
    const bAdmin = caller('TEAM_ADMIN', [B]).token;
    const deployments = [
      await deploy(bAdmin, b.serviceId, dev.id, { version: '1.0.0', initiated_by: MARK }, 'succeeded'),
      await deploy(bAdmin, b.serviceId, staging.id, { version: '1.0.0', initiated_by: MARK }, 'succeeded'),
      await deploy(bAdmin, b.serviceId, prod.id, { version: '1.0.0', initiated_by: MARK }, 'awaiting_approval'),
    ];
    b.deploymentIds = deployments.map((d) => d.id);
    b.jobIds = [...deployments.map((d) => d.job_id), dev.job_id, prod.job_id];
    walk.teams = around([teamB.id], [teamA.id]);
    walk.services = around([b.serviceId], [a.serviceId]);
    walk.environments = around(b.envIds, [aDev.id]);
    walk.deployments = around(b.deploymentIds, []);
  });

  afterAll(async () => {
    // Leave no deployment waiting for the next blocks.
    await send('post', `/api/deployments/${b.deploymentIds[2]}/cancel`);
    await waitForStatus(stack, b.deploymentIds[2]!, ENDED);
  });

  interface Write {
    ids: () => number[];
    send: (id: number, token: string) => Test;
    /** What B's own ids get (the neighbours may not exist: 404). */
    onB: 403 | 404;
    bIds: () => number[];
  }
  const WRITES: [string, Write][] = [
    ['PATCH /api/teams/:id', { ids: () => walk.teams, bIds: () => [b.teamId], onB: 403, send: (id, t) => send('patch', `/api/teams/${id}`, { display_name: 'taken over' }, t) }],
    ['PATCH /api/services/:id {description}', { ids: () => walk.services, bIds: () => [b.serviceId], onB: 403, send: (id, t) => send('patch', `/api/services/${id}`, { description: 'taken over' }, t) }],
    ['PATCH /api/services/:id {team: A}', { ids: () => walk.services, bIds: () => [b.serviceId], onB: 403, send: (id, t) => send('patch', `/api/services/${id}`, { team: A }, t) }],
    ['POST /api/services/:id/environments', { ids: () => walk.services, bIds: () => [b.serviceId], onB: 403, send: (id, t) => send('post', environmentsUrl(id), { name: uniq('e'), tier: 'dev' }, t) }],
    ['POST …/environments/:envId/deployments of B', { ids: () => walk.environments, bIds: () => b.envIds, onB: 403, send: (id, t) => send('post', deploymentsUrl(b.serviceId, id), { version: '1.0.0' }, t) }],
    // A's service in the path, B's environment below it: the pair must not resolve.
    ['POST …/environments/:envId/deployments under A', { ids: () => walk.environments, bIds: () => b.envIds, onB: 404, send: (id, t) => send('post', deploymentsUrl(a.serviceId, id), { version: '1.0.0' }, t) }],
    ['POST /api/deployments/:id/approvals approve', { ids: () => walk.deployments, bIds: () => b.deploymentIds, onB: 403, send: (id, t) => send('post', `/api/deployments/${id}/approvals`, { decision: 'approve' }, t) }],
    ['POST /api/deployments/:id/approvals reject', { ids: () => walk.deployments, bIds: () => b.deploymentIds, onB: 403, send: (id, t) => send('post', `/api/deployments/${id}/approvals`, { decision: 'reject' }, t) }],
    ['POST /api/deployments/:id/cancel', { ids: () => walk.deployments, bIds: () => b.deploymentIds, onB: 403, send: (id, t) => send('post', `/api/deployments/${id}/cancel`, undefined, t) }],
  ];

  it.each(WALKERS.flatMap(([who, c]) => WRITES.map(([what, w]) => [who, what, c, w] as const)))(
    '%s: %s on ids around B is 403/404, shows none of B and changes nothing',
    async (_who, _what, walker, write) => {
      const digest = await rowDigest();
      const since = await lastAuditId();
      const answers = new Map<number, Response>();
      for (const id of write.ids()) answers.set(id, await write.send(id, walker.token));
      for (const res of answers.values()) expectCleanAnswer(res);
      const unexpected = [...answers].filter(([, res]) => ![403, 404].includes(res.status) || JSON.stringify(res.body).includes(MARK));
      expect(unexpected.map(([id, res]) => `${id} → ${res.status} ${JSON.stringify(res.body)}`)).toEqual([]);
      expect(write.bIds().map((id) => answers.get(id)?.status)).toEqual(write.bIds().map(() => write.onB));
      expect(await rowDigest()).toEqual(digest);
      // The only entries written meanwhile are this caller's refusals, one per 403.
      const { rows } = await pg.query('select actor, outcome from audit_log where id > $1 order by id', [since]);
      const refusals = [...answers.values()].filter((res) => res.status === 403).length;
      expect(rows).toEqual(Array.from({ length: refusals }, () => ({ actor: walker.sub, outcome: 'denied' })));
    },
  );

  /**
   * Reading the catalog is open to every authenticated caller (the contract's first row), so the walk
   * cannot expect 403/404 there; what it checks is that a caller of A gets exactly what a platform
   * admin gets for the same URL (200 or the same 404), never more and never a 5xx.
   */
  it.each(WALKERS)('%s reads B’s objects exactly as any reader does (reads are open by contract)', async (_who, walker) => {
    const urls = [
      ...walk.teams.map((id) => `/api/teams/${id}`),
      ...walk.services.flatMap((id) => [`/api/services/${id}`, environmentsUrl(id)]),
      ...walk.environments.flatMap((id) => [`${environmentsUrl(b.serviceId)}/${id}`, deploymentsUrl(b.serviceId, id)]),
      ...walk.deployments.map((id) => `/api/deployments/${id}`),
      ...b.jobIds.map((job) => `/api/jobs/${job}`),
      ...walk.deployments.map((id) => `/api/jobs/${b.jobIds[0]!.replace(/-\d+$/, `-${id}`)}`),
    ];
    const differences: string[] = [];
    for (const url of urls) {
      const [mine, reference] = [await get(url, walker.token), await get(url)];
      expectCleanAnswer(mine);
      if (JSON.stringify(comparable(mine)) !== JSON.stringify(comparable(reference))) differences.push(url);
    }
    expect(differences).toEqual([]);
  });

  it.each(WALKERS)('%s filtering the audit log by B’s target ids sees none of B’s entries', async (_who, walker) => {
    const targets: [string, number[]][] = [
      ['team', walk.teams],
      ['service', walk.services],
      ['environment', walk.environments],
      ['deployment', walk.deployments],
    ];
    const isTeamAdmin = walker.roles.includes('TEAM_ADMIN');
    const seen: string[] = [];
    for (const [type, ids] of targets) {
      for (const id of ids) {
        for (const query of [`target_id=${id}`, `target_type=${type}&target_id=${id}`]) {
          const res = await get(`/api/audit-logs?limit=200&${query}`, walker.token);
          expectCleanAnswer(res);
          expect(res.status).toBe(isTeamAdmin ? 200 : 403);
          for (const entry of res.body.items ?? []) if (!walker.teams.includes(entry.team)) seen.push(`${query}: ${entry.action} of ${entry.team}`);
        }
      }
    }
    expect(seen).toEqual([]);
    const byTeam = await get(`/api/audit-logs?team=${B}`, walker.token);
    expect(byTeam.body.items ?? []).toEqual([]);
    // Not vacuous: the same filters show B's entries to a platform admin.
    const reference = await get(`/api/audit-logs?target_type=deployment&target_id=${b.deploymentIds[0]}`);
    expect(reference.body.items.map((e: { team: string }) => e.team)).toContain(B);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Injection strings
// ---------------------------------------------------------------------------------------------

/** Strings that mean something to SQL, NoSQL stores, template engines, browsers, file systems or terminals. */
const INJECTIONS: [string, string][] = [
  ['sql-or', "' OR 1=1 --"],
  ['sql-drop', '"; drop table service; --'],
  ['sql-dollar-quote', '$$; drop table team; $$'],
  ['sql-placeholders', '? ?? :name $1 \\?'],
  ['nosql-where', '$where'],
  ['nosql-operator', '{"$gt": ""}'],
  ['template', '{{7*7}} ${7*7} <%= 7*7 %>'],
  ['html', '<script>alert(1)</script>'],
  ['path-traversal', '../../etc/passwd'],
  ['rtl-override', 'abc\u202Egnp.exe\u202C'],
  ['zero-width', 'a\u200Bb\u200Dc\uFEFF'],
  ['crlf', 'a\r\nSet-Cookie: x=1'],
  ['quotes-backslashes', '\\"\'`\\\\u0000\\'],
  ['combining-and-astral', 'e\u0301 \u00e9 \u{1F4A5}'],
  ['long-255', 'A'.repeat(255)],
  ['long-2000', 'B'.repeat(2000)],
  ['long-100k', 'C'.repeat(100_000)],
];

/** Node answers 431 itself, before the app, to a request line over 16 KiB: such values cannot travel in a URL. */
const fitsInUrl = (value: string): boolean => encodeURIComponent(value).length < 8_000;
const upTo = (max: number) => (value: string) => value.length <= max;
const never = () => false;

describe('injection strings are stored and matched as data, never interpreted', () => {
  const TEAM = uniq('inj');
  /** Dev environments for the deployment fields, one each (one active deployment per environment); two prod ones for decisions and cancellations. */
  const ENVS = [['by', 'dev'], ['key', 'dev'], ['value', 'dev'], ['staging', 'staging'], ['decide', 'prod'], ['cancel', 'prod']] as const;
  type Env = (typeof ENVS)[number][0];
  const fx = { teamId: 0, serviceId: 0, envs: {} as Record<Env, number>, awaiting: {} as Partial<Record<Env, number>>, approver: '', approvals: null as unknown };

  beforeAll(async () => {
    fx.teamId = (await createTeam(stack, TEAM)).id;
    fx.serviceId = (await createService(stack, TEAM)).id;
    const envs = await Promise.all(ENVS.map(([name, tier]) => readyEnvironment(stack, fx.serviceId, tier, name)));
    ENVS.forEach(([name], i) => (fx.envs[name] = envs[i]!.id));
    await deploy(admin, fx.serviceId, fx.envs.by, { version: '1.0.0' }, 'succeeded');
    await deploy(admin, fx.serviceId, fx.envs.staging, { version: '1.0.0' }, 'succeeded');
    for (const [name, kind, config] of [
      ['inj_tags', 'mandatory_tags', { tags: [] }],
      ['inj_values', 'allowed_values', { tag: 'x', values: ['x'] }],
    ] as const) {
      expect((await send('put', `/api/policies/${name}`, { kind, enabled: false, config })).status).toBe(200);
    }
    // Ten approvals per prod deployment, so that one deployment takes ten comments. Restored below.
    fx.approvals = (await get('/api/policies?limit=200')).body.items.find((p: { name: string }) => p.name === 'prod_approvals').config;
    const required = await send('put', '/api/policies/prod_approvals', { kind: 'prod_approvals', enabled: true, config: { tier: 'prod', required: 10, timeout: '24h' } });
    expect(required.status).toBe(200);
  });

  afterAll(async () => {
    await send('put', '/api/policies/prod_approvals', { kind: 'prod_approvals', enabled: true, config: fx.approvals as object });
    for (const env of [fx.envs.decide, fx.envs.cancel]) {
      const latest = await latestDeployment(fx.serviceId, env);
      if (latest && !ENDED.includes(latest.status)) {
        await send('post', `/api/deployments/${latest.id}/cancel`);
        await waitForStatus(stack, latest.id, ENDED);
      }
    }
  });

  /** Waits until the environment's newest deployment ended (one active deployment per environment). */
  const idle = (env: Env) => async (): Promise<void> => {
    await eventually(async () => {
      const latest = await latestDeployment(fx.serviceId, fx.envs[env]);
      return !latest || ENDED.includes(latest.status);
    });
  };

  /**
   * Makes `fx.awaiting[env]` a prod deployment waiting for approvals: one to decide on or to cancel.
   * (Waiting is a state that holds still; a simulated rollout ignores cancellation until its delay ends.)
   */
  const awaiting = (env: Env) => async (): Promise<void> => {
    const latest = await latestDeployment(fx.serviceId, fx.envs[env]);
    if (latest?.status === 'awaiting_approval') {
      fx.awaiting[env] = latest.id;
      return;
    }
    if (latest) await waitForStatus(stack, latest.id, ENDED);
    fx.awaiting[env] = (await deploy(admin, fx.serviceId, fx.envs[env], { version: '1.0.0' }, 'awaiting_approval')).id;
  };

  const readService = async (res: Response) => (await get(`/api/services/${res.body.id}`)).body;
  const readEnvironment = async (res: Response) => (await get(`${environmentsUrl(fx.serviceId)}/${res.body.id}`)).body;
  const readDeployment = async (res: Response) => waitForStatus(stack, res.body.id, 'succeeded');
  const readPolicy = async (name: string) => (await get('/api/policies?limit=200')).body.items.find((p: { name: string }) => p.name === name).config;
  const newService = (extra: object) => send('post', '/api/services', { name: uniq('s'), team: TEAM, tags: TAGS, ...extra });
  const newEnvironment = (extra: object) => send('post', environmentsUrl(fx.serviceId), { name: uniq('e'), tier: 'dev', ...extra });
  const newDeployment = (env: Env, extra: object) => send('post', deploymentsUrl(fx.serviceId, fx.envs[env]), { version: '1.0.0', ...extra });
  const unknownKey = (map: Record<string, unknown>) => Object.keys(map).find((k) => !(k in TAGS));

  interface Field {
    /** Whether the contract takes the value (length limits); any other value must get a 400. */
    takes: (value: string) => boolean;
    /** The status of an accepted value. */
    ok: number;
    send: (value: string) => Test;
    /** The table an accepted value adds a row to. */
    creates?: Table;
    /** Makes the state the request needs (an idle environment, a deployment waiting for approvals) before rows are counted. */
    prepare?: () => Promise<void>;
    /** Reads the stored value back through the API after an accepted request. */
    stored?: (res: Response) => Promise<unknown>;
    inUrl?: boolean;
  }
  /** Slugs, enums, versions and path names: none of the strings above is one. */
  const refused = (request: (value: string) => Test, more: Partial<Field> = {}): Field => ({ takes: never, ok: 400, send: request, ...more });

  const FIELDS: [string, Field][] = [
    ['POST /api/teams name', refused((v) => send('post', '/api/teams', { name: v }))],
    ['POST /api/teams display_name', { takes: upTo(200), ok: 201, creates: 'team', send: (v) => send('post', '/api/teams', { name: uniq('t'), display_name: v }), stored: async (res) => (await get(`/api/teams/${res.body.id}`)).body.display_name }],
    ['PATCH /api/teams/:id display_name', { takes: upTo(200), ok: 200, send: (v) => send('patch', `/api/teams/${fx.teamId}`, { display_name: v }), stored: async () => (await get(`/api/teams/${fx.teamId}`)).body.display_name }],
    ['POST /api/services name', refused((v) => send('post', '/api/services', { name: v, tags: TAGS }))],
    ['POST /api/services team', refused((v) => newService({ team: v }))],
    ['POST /api/services description', { takes: upTo(2000), ok: 201, creates: 'service', send: (v) => newService({ description: v }), stored: async (res) => (await readService(res)).description }],
    ['POST /api/services tags.owner', { takes: upTo(255), ok: 201, creates: 'service', send: (v) => newService({ tags: { ...TAGS, owner: v } }), stored: async (res) => (await readService(res)).tags.owner }],
    ['POST /api/services tags key', { takes: upTo(63), ok: 201, creates: 'service', send: (v) => newService({ tags: { ...TAGS, [v]: 'x' } }), stored: async (res) => unknownKey((await readService(res)).tags) }],
    ['PATCH /api/services/:id description', { takes: upTo(2000), ok: 200, send: (v) => send('patch', `/api/services/${fx.serviceId}`, { description: v }), stored: async (res) => (await readService(res)).description }],
    ['PATCH /api/services/:id tags.owner', { takes: upTo(255), ok: 200, send: (v) => send('patch', `/api/services/${fx.serviceId}`, { tags: { ...TAGS, owner: v } }), stored: async (res) => (await readService(res)).tags.owner }],
    ['PATCH /api/services/:id team', refused((v) => send('patch', `/api/services/${fx.serviceId}`, { team: v }))],
    ['POST …/environments name', refused((v) => newEnvironment({ name: v }))],
    ['POST …/environments tier', refused((v) => newEnvironment({ tier: v }))],
    ['POST …/environments config key', { takes: upTo(255), ok: 202, creates: 'environment', send: (v) => newEnvironment({ config: { [v]: 'x' } }), stored: async (res) => Object.keys((await readEnvironment(res)).config)[0] }],
    ['POST …/environments config value', { takes: () => true, ok: 202, creates: 'environment', send: (v) => newEnvironment({ config: { nested: [{ value: v }] } }), stored: async (res) => (await readEnvironment(res)).config.nested[0].value }],
    ['POST …/deployments version', refused((v) => newDeployment('by', { version: v }))],
    ['POST …/deployments initiated_by', { takes: upTo(255), ok: 202, creates: 'deployment', prepare: idle('by'), send: (v) => newDeployment('by', { initiated_by: v }), stored: async (res) => (await readDeployment(res)).initiated_by }],
    ['POST …/deployments config key', { takes: upTo(255), ok: 202, creates: 'deployment', prepare: idle('key'), send: (v) => newDeployment('key', { config: { [v]: 'x' } }), stored: async (res) => Object.keys((await readDeployment(res)).config)[0] }],
    ['POST …/deployments config value', { takes: () => true, ok: 202, creates: 'deployment', prepare: idle('value'), send: (v) => newDeployment('value', { config: { note: v } }), stored: async (res) => (await readDeployment(res)).config.note }],
    ['POST /api/deployments/:id/approvals decision', refused((v) => send('post', `/api/deployments/${fx.awaiting.decide}/approvals`, { decision: v }), { prepare: awaiting('decide') })],
    ['POST /api/deployments/:id/approvals comment', {
      takes: upTo(2000),
      ok: 202,
      creates: 'approval',
      prepare: awaiting('decide'),
      send: (v) => {
        const approver = caller('TEAM_ADMIN', [TEAM]);
        fx.approver = approver.sub;
        return send('post', `/api/deployments/${fx.awaiting.decide}/approvals`, { decision: 'approve', comment: v }, approver.token);
      },
      stored: async () => (await get(`/api/deployments/${fx.awaiting.decide}`)).body.approvals.find((x: { approver: string }) => x.approver === fx.approver).comment,
    }],
    ['POST /api/deployments/:id/cancel reason', {
      takes: upTo(2000),
      ok: 202,
      prepare: awaiting('cancel'),
      send: (v) => send('post', `/api/deployments/${fx.awaiting.cancel}/cancel`, { reason: v }),
      // The reason is kept in the cancellation's audit entry only.
      stored: async () => {
        await waitForStatus(stack, fx.awaiting.cancel!, 'cancelled');
        return (await get(`/api/audit-logs?action=deployment.cancel&target_id=${fx.awaiting.cancel}`)).body.items[0].details.reason;
      },
    }],
    ['PUT /api/policies/:name name', refused((v) => send('put', `/api/policies/${encodeURIComponent(v)}`, { kind: 'mandatory_tags', enabled: false, config: { tags: [] } }), { inUrl: true })],
    ['PUT /api/policies/:name kind', refused((v) => send('put', '/api/policies/inj_tags', { kind: v, enabled: false, config: { tags: [] } }))],
    ['PUT /api/policies/:name mandatory_tags.tags[]', { takes: upTo(63), ok: 200, send: (v) => send('put', '/api/policies/inj_tags', { kind: 'mandatory_tags', enabled: false, config: { tags: [v] } }), stored: async () => (await readPolicy('inj_tags')).tags[0] }],
    ['PUT /api/policies/:name allowed_values.tag', { takes: upTo(63), ok: 200, send: (v) => send('put', '/api/policies/inj_values', { kind: 'allowed_values', enabled: false, config: { tag: v, values: ['x'] } }), stored: async () => (await readPolicy('inj_values')).tag }],
    ['PUT /api/policies/:name allowed_values.values[]', { takes: upTo(255), ok: 200, send: (v) => send('put', '/api/policies/inj_values', { kind: 'allowed_values', enabled: false, config: { tag: 'x', values: [v] } }), stored: async () => (await readPolicy('inj_values')).values[0] }],
    ['POST /api/policies/evaluate action', refused((v) => send('post', '/api/policies/evaluate', { action: v, payload: {} }))],
    ['POST /api/policies/evaluate payload.tags.owner', { takes: upTo(255), ok: 200, send: (v) => send('post', '/api/policies/evaluate', { action: 'service.create', payload: { name: 'dry-run', tags: { ...TAGS, owner: v } } }) }],
  ];

  const BODY_CASES = FIELDS.flatMap(([name, field]) =>
    INJECTIONS.filter(([, value]) => !field.inUrl || fitsInUrl(value)).map(([label, value]) => [name, label, field, value] as const),
  );

  it.each(BODY_CASES)('%s ← %s', async (_name, _label, field, value) => {
    await field.prepare?.();
    const before = await rowCounts();
    const res = await field.send(value);
    expectCleanAnswer(res);
    expect(outcome(res)).toMatchObject({ status: field.takes(value) ? field.ok : 400 });
    const created = field.creates && res.status < 300 ? { [field.creates]: before[field.creates] + 1 } : {};
    expect(await rowCounts()).toEqual({ ...before, ...created });
    if (res.status < 300 && field.stored) expect(await field.stored(res)).toBe(value);
  });

  const ids = async (sql: string, params: unknown[]): Promise<number[]> => (await pg.query(sql, params)).rows.map((r: { id: number }) => r.id);
  const query = (path: string, key: string, value: string) => `${path}?limit=200&${encodeURIComponent(key)}=${encodeURIComponent(value)}`;

  interface Filter {
    takes: (value: string) => boolean;
    url: (value: string) => string;
    /** The ids the filter must answer, from PostgreSQL with bound parameters. */
    oracle?: (value: string) => Promise<number[]>;
    /** Stores a row the filter must find (so the comparison is not between two empty lists). */
    seed?: (value: string) => Promise<void>;
  }
  const expectCreated = async (res: Test): Promise<void> => expect((await res).status).toBe(201);
  /** A refused read by a caller whose `sub` is the value: an audit entry with it as actor. */
  const deniedAs = async (sub: string): Promise<void> => {
    const token = tokenFor(sub, ['DEVELOPER']);
    issued.add(token);
    expect((await get('/api/audit-logs', token)).status).toBe(403);
  };
  /** An audit entry whose `column` holds the value, written with bound parameters (the API never writes such values itself). */
  const auditWith = (column: string) => async (value: string): Promise<void> => {
    const row = { action: 'seed.entry', target_type: 'seed', target_id: null, team: null, correlation_id: null, [column]: value };
    await pg.query(
      `insert into audit_log (at, actor, actor_roles, action, outcome, target_type, target_id, team, correlation_id, details)
       values (now(), 'seed', '[]', $1, 'success', $2, $3, $4, $5, '{}')`,
      [row.action, row.target_type, row.target_id, row.team, row.correlation_id],
    );
  };
  const AUDIT_FILTERS: [string, number, (value: string) => Promise<void>][] = [
    ['action', 63, auditWith('action')],
    ['actor', 255, deniedAs],
    ['target_type', 63, auditWith('target_type')],
    ['target_id', 255, auditWith('target_id')],
    ['team', 63, auditWith('team')],
    ['correlation_id', 128, auditWith('correlation_id')],
  ];
  const FILTERS: [string, Filter][] = [
    ['GET /api/services?team=', { takes: never, url: (v) => query('/api/services', 'team', v) }],
    ['GET /api/services?tag.owner=', {
      takes: upTo(255),
      url: (v) => query('/api/services', 'tag.owner', v),
      oracle: (v) => ids(`select id from service where tags->>'owner' = $1 order by id`, [v]),
      seed: (v) => expectCreated(newService({ tags: { ...TAGS, owner: v } })),
    }],
    // A tag key may not contain a dot (tag.KEY would be ambiguous) and has at most 63 characters.
    ['GET /api/services?tag.KEY= (as KEY)', {
      takes: (v) => v.length <= 63 && !v.includes('.'),
      url: (v) => query('/api/services', `tag.${v}`, 'x'),
      oracle: (v) => ids(`select id from service where tags->>$1 = 'x' order by id`, [v]),
      seed: (v) => expectCreated(newService({ tags: { ...TAGS, [v]: 'x' } })),
    }],
    ...AUDIT_FILTERS.map(([param, max, seed]): [string, Filter] => [
      `GET /api/audit-logs?${param}=`,
      { takes: upTo(max), url: (v) => query('/api/audit-logs', param, v), oracle: (v) => ids(`select id from audit_log where ${param} = $1 order by id desc limit 200`, [v]), seed },
    ]),
    ['GET /api/audit-logs?since=', { takes: never, url: (v) => query('/api/audit-logs', 'since', v) }],
    ...['/api/teams', '/api/services', '/api/audit-logs', '/api/policies'].map((path): [string, Filter] => [`GET ${path}?cursor=`, { takes: never, url: (v) => query(path, 'cursor', v) }]),
  ];
  const FILTER_CASES = FILTERS.flatMap(([name, filter]) =>
    INJECTIONS.filter(([, value]) => fitsInUrl(value)).map(([label, value]) => [name, label, filter, value] as const),
  );

  it.each(FILTER_CASES)('%s%s is a 400 or exactly what PostgreSQL finds for the literal', async (_name, _label, filter, value) => {
    if (filter.takes(value)) await filter.seed?.(value);
    const before = await rowCounts();
    const res = await get(filter.url(value));
    expectCleanAnswer(res);
    expect(outcome(res)).toMatchObject({ status: filter.takes(value) ? 200 : 400 });
    if (res.status === 200 && filter.oracle) {
      const expected = await filter.oracle(value);
      expect(res.body.items.map((i: { id: number }) => i.id)).toEqual(expected);
      expect(expected.length).toBeGreaterThanOrEqual(filter.seed ? 1 : 0);
    }
    expect(await rowCounts()).toEqual(before);
  });

  /**
   * PostgreSQL stores neither NUL nor an unpaired surrogate: in text the surrogate silently became
   * U+FFFD (the 201 showed one value, later reads another), in jsonb and in filters the statement
   * failed with a 500/503. They are refused with 400 instead.
   */
  it.each([
    ['POST /api/teams display_name (text)', () => send('post', '/api/teams', { name: uniq('t'), display_name: 'x\ud800y' })],
    ['POST /api/services tags.owner (jsonb)', () => newService({ tags: { ...TAGS, owner: 'x\udc00' } })],
    ['POST …/environments config key (jsonb)', () => newEnvironment({ config: { ['\ud800']: 1 } })],
    ['GET /api/services?tag.owner=%00', () => get('/api/services?tag.owner=a%00')],
    ['GET /api/services?tag.KEY%00=', () => get('/api/services?tag.a%00=x')],
    ['GET /api/audit-logs?actor=%00', () => get('/api/audit-logs?actor=a%00')],
    ['GET /api/audit-logs?target_id=%00', () => get('/api/audit-logs?target_id=%00')],
    ['GET /api/policies?cursor= decoding to NUL', () => get(`/api/policies?cursor=${Buffer.from('\u0000').toString('base64url')}`)],
  ])('an unstorable character in %s is a 400, neither altered nor a 5xx', async (_name, request) => {
    const before = await rowCounts();
    const res = await request();
    expectCleanAnswer(res);
    expect(res.status).toBe(400);
    expect(await rowCounts()).toEqual(before);
  });

  it('leaves every table in place', async () => {
    const all = [...TABLES, 'audit_log'];
    const { rows } = await pg.query(`select ${all.map((t) => `to_regclass('public.${t}') is not null as ${t}`).join(', ')}`);
    expect(rows[0]).toEqual(Object.fromEntries(all.map((t) => [t, true])));
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Forged correlation ids
// ---------------------------------------------------------------------------------------------

interface RawResponse {
  status: number;
  /** Lower-case name and value of every header line, in order. */
  headers: [string, string][];
}

/**
 * Sends a request over a plain socket: Node's http client refuses CR and LF in header values, which
 * is exactly what these requests carry. `headerLines` is sent as given, after Host and Content-*.
 */
async function rawRequest(method: string, path: string, headerLines: string, body: string): Promise<RawResponse> {
  const { port } = stack.server.address() as AddressInfo;
  const payload = Buffer.from(body);
  const head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\n${headerLines}\r\n\r\n`;
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve) => {
    // write, not end: Node's server aborts a request whose client half-closes before the answer.
    const socket = net.connect(port, '127.0.0.1', () => socket.write(Buffer.concat([Buffer.from(head, 'utf8'), payload])));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A parser refusal may reset the connection after its answer: what arrived is what counts.
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
  const [statusLine = '', ...lines] = (Buffer.concat(chunks).toString('utf8').split('\r\n\r\n')[0] ?? '').split('\r\n');
  return {
    status: Number(statusLine.split(' ')[1]),
    headers: lines.map((line): [string, string] => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  };
}

describe('forged correlation ids and header injection', () => {
  /**
   * What becomes of the forged header: `kept` — a CRLF ends the header line, so what precedes it is
   * an ordinary well-formed id the caller sent (kept as such) and what follows is a request header of
   * its own, never echoed; `uuid` — the app sees the whole forged value and replaces it with a fresh
   * UUID; `parser` — Node's HTTP parser answers 400 before the app runs.
   */
  type Fate = 'kept' | 'uuid' | 'parser';
  const FORGED: [string, Fate, (id: string) => string][] = [
    ['CRLF in X-Correlation-Id', 'kept', (id) => `X-Correlation-Id: ${id}\r\nSet-Cookie: x=1`],
    ['CRLF in X-Request-Id', 'kept', (id) => `X-Request-Id: ${id}\r\nSet-Cookie: x=1`],
    ['CRLF and a second X-Correlation-Id', 'uuid', (id) => `X-Correlation-Id: ${id}\r\nX-Correlation-Id: forged\r\nLocation: https://evil.example`],
    ['percent-encoded CRLF', 'uuid', (id) => `X-Correlation-Id: ${id}%0d%0aSet-Cookie:%20x=1`],
    ['tab and header text', 'uuid', (id) => `X-Correlation-Id: ${id}\tSet-Cookie: x=1`],
    ['UTF-8 right-to-left override', 'uuid', (id) => `X-Request-Id: ${id}\u202e1=x :eikooC-teS`],
    ['bare LF', 'parser', (id) => `X-Correlation-Id: ${id}\nSet-Cookie: x=1`],
    ['bare CR', 'parser', (id) => `X-Correlation-Id: ${id}\rSet-Cookie: x=1`],
    ['obsolete line folding', 'parser', (id) => `X-Correlation-Id: ${id}\r\n Set-Cookie: x=1`],
    ['NUL', 'parser', (id) => `X-Correlation-Id: ${id}\u0000Set-Cookie: x=1`],
  ];

  it.each(FORGED)('%s: nothing is injected; header, log line and audit entry agree (%s)', async (_name, fate, forge) => {
    const id = uniq('fwd');
    const team = uniq('hdr');
    const res = await rawRequest('POST', '/api/teams', `Authorization: Bearer ${admin}\r\n${forge(id)}`, JSON.stringify({ name: team }));
    expect(res.headers.filter(([name]) => ['set-cookie', 'location'].includes(name))).toEqual([]);
    const audit = await pg.query(`select correlation_id from audit_log where action = 'team.create' and team = $1`, [team]);
    if (fate === 'parser') {
      expect(res.status).toBe(400);
      expect(audit.rows).toEqual([]);
      expect(capturedLines.filter((line) => line.includes(id))).toEqual([]);
      return;
    }
    expect(res.status).toBe(201);
    const echoed = res.headers.filter(([name]) => name === 'x-correlation-id').map(([, value]) => value);
    expect(echoed).toEqual([fate === 'kept' ? id : expect.stringMatching(UUID)]);
    // One log line for the request, under the echoed id; the forged text in none.
    const lines = capturedLines.filter((line) => line.includes(id) || line.includes(echoed[0]!));
    expect(lines.map((line) => JSON.parse(line)).map((l) => [l.correlation_id, l.msg, l.path, l.status])).toEqual([[echoed[0], 'request', '/api/teams', 201]]);
    expect(lines.filter((line) => /Set-Cookie|evil\.example/i.test(line))).toEqual([]);
    expect(audit.rows).toEqual([{ correlation_id: echoed[0] }]);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. One audit entry per state-changing call
// ---------------------------------------------------------------------------------------------

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
    entry: ((res: Response) => [Entry['action'], Entry['outcome'], string, string | number | null, (string | null)?]) | null,
  ): Promise<Response> {
    const res = method === 'get' ? await get(url, who.token) : await send(method, url, body, who.token);
    if (res.status !== status) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(res.body)}`);
    const e = entry?.(res);
    journal.push({
      call: `${who.sub} ${method.toUpperCase()} ${url} → ${status}`,
      correlationId: res.headers['x-correlation-id'],
      entry: e ? { action: e[0], outcome: e[1], target_type: e[2], target_id: e[3] === null ? null : String(e[3]), actor: who.sub, team: e[4] === undefined ? T : e[4] } : null,
    });
    return res;
  }

  beforeAll(async () => {
    const team = (await step(pa, 'post', '/api/teams', { name: T }, 201, (r) => ['team.create', 'success', 'team', r.body.id])).body;
    await step(pa, 'patch', `/api/teams/${team.id}`, { display_name: 'Audited' }, 200, () => ['team.update', 'success', 'team', team.id]);
    await step(ta, 'patch', `/api/teams/${team.id}`, { display_name: 'Mine' }, 403, () => ['team.update', 'denied', 'team', team.id]);
    await step(pa, 'patch', '/api/teams/2147483647', { display_name: 'Nobody' }, 404, null);
    await step(pa, 'post', '/api/teams', { name: T }, 409, null);

    const sid = (await step(ta, 'post', '/api/services', { name: uniq('audited'), team: T, tags: TAGS }, 201, (r) => ['service.create', 'success', 'service', r.body.id])).body.id;
    await step(ta, 'patch', `/api/services/${sid}`, { description: 'audited' }, 200, () => ['service.update', 'success', 'service', sid]);
    await step(ta, 'patch', `/api/services/${sid}`, { tags: { owner: 'x' } }, 400, () => ['service.update', 'violation', 'service', sid]);
    await step(dev, 'patch', `/api/services/${sid}`, { description: 'mine' }, 403, () => ['service.update', 'denied', 'service', sid]);
    await step(ta, 'post', '/api/services', { name: uniq('s'), team: T, tags: { owner: 'x' } }, 400, () => ['service.create', 'violation', 'service', null]);
    await step(ta, 'post', '/api/services', { name: uniq('s'), team: T, tags: TAGS, colour: 'red' }, 400, null);

    const put = { kind: 'mandatory_tags', enabled: false, config: { tags: ['cost_center'] } };
    await step(pa, 'put', `/api/policies/${policy}`, put, 200, () => ['policy.update', 'success', 'policy', policy, null]);
    await step(ta, 'put', `/api/policies/${policy}`, put, 403, () => ['policy.update', 'denied', 'policy', policy, null]);

    const env: Record<string, number> = {};
    for (const tier of ['dev', 'staging', 'prod']) {
      env[tier] = (await step(ta, 'post', environmentsUrl(sid), { name: tier, tier }, 202, (r) => ['environment.create', 'success', 'environment', r.body.id])).body.id;
      environments.push(env[tier]!);
    }
    await step(dev, 'post', environmentsUrl(sid), { name: 'qa', tier: 'dev' }, 403, () => ['environment.create', 'denied', 'service', sid]);
    await step(ta, 'post', environmentsUrl(sid), { name: 'leaky', tier: 'dev', config: { db: { password: 'x' } } }, 400, () => ['environment.create', 'violation', 'service', sid]);
    await step(ta, 'post', environmentsUrl(2147483647), { name: 'dev', tier: 'dev' }, 404, null);
    for (const id of environments) {
      await eventually(async () => (await get(`${environmentsUrl(sid)}/${id}`)).body.status === 'ready');
    }

    /** Triggers a deployment as `who` (202), notes it and waits for `status`. */
    const trigger = async (who: Caller, tier: string, body: object, status: string) => {
      const res = await step(who, 'post', deploymentsUrl(sid, env[tier]!), body, 202, (r) => ['deployment.create', 'success', 'deployment', r.body.id]);
      deployments.push(res.body.id);
      await waitForStatus(stack, res.body.id, status);
      return res.body.id as number;
    };
    await trigger(dev, 'dev', { version: '1.0.0' }, 'succeeded');
    await trigger(dev, 'staging', { version: '1.0.0' }, 'succeeded');
    await step(dev, 'post', deploymentsUrl(sid, env['prod']!), { version: '9.9.9' }, 400, () => ['deployment.create', 'violation', 'environment', env['prod']!]);
    await step(dev, 'post', deploymentsUrl(sid, env['dev']!), { version: '1.0.1', config: { api_token: 'x' } }, 400, () => ['deployment.create', 'violation', 'environment', env['dev']!]);
    await step(outsider, 'post', deploymentsUrl(sid, env['dev']!), { version: '1.0.1' }, 403, () => ['deployment.create', 'denied', 'environment', env['dev']!]);

    const approved = await trigger(dev, 'prod', { version: '1.0.0' }, 'awaiting_approval');
    await step(dev, 'post', `/api/deployments/${approved}/approvals`, { decision: 'approve' }, 403, () => ['deployment.approve', 'denied', 'deployment', approved]);
    await step(ta, 'post', `/api/deployments/${approved}/approvals`, { decision: 'approve' }, 202, () => ['deployment.approve', 'success', 'deployment', approved]);
    await waitForStatus(stack, approved, 'succeeded');
    await step(ta2, 'post', `/api/deployments/${approved}/approvals`, { decision: 'approve' }, 409, null);

    const rejected = await trigger(dev, 'prod', { version: '1.0.0' }, 'awaiting_approval');
    await step(ta2, 'post', `/api/deployments/${rejected}/approvals`, { decision: 'reject', comment: 'not today' }, 202, () => ['deployment.reject', 'success', 'deployment', rejected]);
    await waitForStatus(stack, rejected, 'rejected');

    const cancelled = await trigger(dev, 'prod', { version: '1.0.0' }, 'awaiting_approval');
    await step(outsider, 'post', `/api/deployments/${cancelled}/cancel`, undefined, 403, () => ['deployment.cancel', 'denied', 'deployment', cancelled]);
    await step(dev, 'post', `/api/deployments/${cancelled}/cancel`, { reason: 'changed my mind' }, 202, () => ['deployment.cancel', 'success', 'deployment', cancelled]);
    await waitForStatus(stack, cancelled, 'cancelled');
    await step(dev, 'post', `/api/deployments/${cancelled}/cancel`, undefined, 409, null);
    await step(dev, 'post', '/api/deployments/2147483647/cancel', undefined, 404, null);
    await step(dev, 'get', '/api/audit-logs', undefined, 403, () => ['audit.read', 'denied', 'audit_log', null, null]);
  });

  /** Entries the worker writes for status changes carry a dedupe key `<job>:status:<status>`. */
  const TRANSITION = `dedupe_key like '%:status:%'`;

  it('writes one entry per allowed or refused call, and none for 400 invalid input, 404 or 409', async () => {
    const { rows } = await pg.query(
      `select correlation_id, json_build_object('action', action, 'outcome', outcome, 'target_type', target_type,
         'target_id', target_id, 'actor', actor, 'team', team) as entry
        from audit_log where correlation_id = any($1) and (dedupe_key is null or not ${TRANSITION}) order by id`,
      [journal.map((j) => j.correlationId)],
    );
    const written = journal.map(({ call, correlationId }) => [
      call,
      rows.filter((r: { correlation_id: string }) => r.correlation_id === correlationId).map((r: { entry: Entry }) => r.entry),
    ]);
    expect(written).toEqual(journal.map(({ call, entry }) => [call, entry ? [entry] : []]));
  });

  it('records each status change of the worker exactly once, as the timeline shows it', async () => {
    for (const id of deployments) {
      const { timeline } = (await get(`/api/deployments/${id}`)).body as { timeline: { status: string; actor: string }[] };
      const { rows } = await pg.query(`select action, actor from audit_log where target_type = 'deployment' and target_id = $1 and ${TRANSITION} order by id`, [String(id)]);
      expect(rows).toEqual(timeline.slice(1).map((t) => ({ action: `deployment.${t.status}`, actor: t.actor })));
    }
    const { rows } = await pg.query(
      `select target_id, action, actor from audit_log where target_type = 'environment' and target_id = any($1) and ${TRANSITION} order by target_id::int`,
      [environments.map(String)],
    );
    expect(rows).toEqual(environments.map((id) => ({ target_id: String(id), action: 'environment.ready', actor: 'system:worker' })));
  });

  it('leaves no other entry by these callers', async () => {
    const subs = [pa, ta, ta2, dev, outsider].map((c) => c.sub);
    const { rows } = await pg.query(`select action, correlation_id from audit_log where actor = any($1) and (dedupe_key is null or not ${TRANSITION})`, [subs]);
    const calls = new Set(journal.map((j) => j.correlationId));
    expect(rows.filter((r: { correlation_id: string }) => !calls.has(r.correlation_id))).toEqual([]);
    expect(rows).toHaveLength(journal.filter((j) => j.entry).length);
  });
});

// ---------------------------------------------------------------------------------------------
// 5. Secrets in logs and the audit log (last: it scans what the whole file logged)
// ---------------------------------------------------------------------------------------------

describe('no token and no restricted value reaches a log line or an audit entry', () => {
  it('scans every captured log line and audit row for every token sent and every restricted value', async () => {
    const team = await createTeam(stack);
    const service = await createService(stack, team.name);
    const env = await readyEnvironment(stack, service.id, 'dev');
    const keeper = caller('TEAM_ADMIN', [team.name]);
    const outsider = caller('TEAM_ADMIN', [uniq('elsewhere')]);
    const secrets: string[] = [];
    const secret = (what: string): string => {
      secrets.push(`${what}-${randomUUID()}`);
      return secrets[secrets.length - 1]!;
    };
    const forged = (payload: object, key: string) => {
      const token = jwt.sign({ sub: uniq('forger'), roles: ['PLATFORM_ADMIN'], teams: [], ...payload }, key, { algorithm: 'HS256' });
      issued.add(token);
      return token;
    };
    const now = Math.floor(Date.now() / 1000);
    const envs = environmentsUrl(service.id);
    const deployments = deploymentsUrl(service.id, env.id);
    const REQUESTS: [string, () => Test, number][] = [
      ['restricted tag', () => send('post', '/api/services', { name: uniq('s'), team: team.name, tags: { ...TAGS, api_token: secret('tag') } }, keeper.token), 400],
      ['restricted tag in an update', () => send('patch', `/api/services/${service.id}`, { tags: { ...TAGS, Client_Secret: secret('patch') } }, keeper.token), 400],
      ['restricted environment config', () => send('post', envs, { name: 'leak', tier: 'dev', config: { db: { host: 'db', Password: secret('env') }, list: [{ TOKEN: secret('env-list') }] } }, keeper.token), 400],
      ['restricted deployment config', () => send('post', deployments, { version: '1.0.0', config: { aws: { SECRET_ACCESS_KEY: secret('deploy') } } }, keeper.token), 400],
      ['restricted config from a refused caller', () => send('post', envs, { name: 'leak', tier: 'dev', config: { password: secret('denied') } }, outsider.token), 403],
      ['restricted config in an invalid body', () => send('post', envs, { name: 'leak', tier: 'dev', config: { password: secret('schema') }, extra: true }, keeper.token), 400],
      ['restricted config in a dry run', () => send('post', '/api/policies/evaluate', { action: 'deployment.create', payload: { version: '1.0.0', config: { token: secret('dry-run') } } }, keeper.token), 200],
      ['token signed with another key', () => get('/api/teams', forged({ exp: now + 600 }, 'another-secret-that-is-long-enough-0123456789')), 401],
      ['expired token', () => get('/api/teams', forged({ exp: now - 60 }, TEST_SECRET)), 401],
      ['garbage token', () => stack.http.get('/api/teams').set('Authorization', `Bearer ${secret('not-a-jwt')}`), 401],
      ['valid token in the query string only', () => stack.http.get(`/api/teams?access_token=${keeper.token}&token=${keeper.token}`), 401],
    ];
    const ids: string[] = [];
    for (const [name, request, status] of REQUESTS) {
      const res = await request();
      expect([name, res.status]).toEqual([name, status]);
      ids.push(res.headers['x-correlation-id']);
    }
    // And a deployment that goes through, so the worker logs under the keeper's request too.
    await deploy(keeper.token, service.id, env.id, { version: '1.0.0' }, 'succeeded');

    // Not vacuous: every request was logged (at debug level), and the guardrail refusals were audited
    // with the restricted values replaced.
    const logged = new Set(logLines().map((line) => line['correlation_id']));
    expect(ids.filter((id) => !logged.has(id))).toEqual([]);
    expect(logLines().map((line) => line['msg'])).toContain('deployment status changed');
    const { rows: refusals } = await pg.query(`select details from audit_log where correlation_id = any($1) and outcome = 'violation' order by id`, [ids]);
    expect(refusals.map((r: { details: { attempted: unknown } }) => r.details.attempted)).toEqual([
      expect.objectContaining({ tags: expect.objectContaining({ api_token: '[redacted]' }) }),
      expect.objectContaining({ tags: expect.objectContaining({ Client_Secret: '[redacted]' }) }),
      expect.objectContaining({ config: { db: { host: 'db', Password: '[redacted]' }, list: [{ TOKEN: '[redacted]' }] } }),
      expect.objectContaining({ config: { aws: { SECRET_ACCESS_KEY: '[redacted]' } } }),
    ]);

    const { rows: audit } = await pg.query('select a::text as row from audit_log a');
    const haystack = [...capturedLines, ...audit.map((r: { row: string }) => r.row)];
    // A whole token, or its signature alone (the part that makes it usable).
    const needles = [...[...issued].flatMap((token) => [token, token.split('.')[2]!]), ...secrets];
    const leaks = haystack.flatMap((text) => needles.filter((needle) => text.includes(needle)).map((needle) => `${needle.slice(0, 16)}… in ${text.slice(0, 300)}`));
    expect(leaks).toEqual([]);
  });
});
