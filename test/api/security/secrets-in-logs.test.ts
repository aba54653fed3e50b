/**
 * No token and no restricted value reaches a log line or an audit entry (issue 5's security suite).
 * The file makes its own traffic: requests carrying restricted values (refused by the guardrails, by
 * the schema, by role, and a dry run), bad tokens of every kind, and the calls of the other security
 * files by every role (writes allowed and refused, across teams and by look-alike team claims, reads,
 * audit reads, approvals, rejections, cancellations, forged correlation ids), with the worker running
 * deployments under them. Then it scans every line the API and the worker logged, at debug level,
 * and every row of the audit log for every token it sent and every restricted value.
 */
jest.mock('../../../src/logger', () =>
  jest.requireActual<typeof import('./log-capture')>('./log-capture').capturingLoggerModule(),
);

import { randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Response, Test } from 'supertest';
import { caller } from './callers';
import { capturedLines, logLines } from './log-capture';
import { rawRequest } from './raw-request';
import { TAGS, deploymentsUrl, environmentsUrl, useSecurityStack } from './security-stack';
import {
  createService,
  createTeam,
  readyEnvironment,
  waitForEnvironment,
  waitForStatus,
} from '../../support/fixtures';
import { TEST_SECRET, tokenFor, uniq } from '../../support/stack';

const api = useSecurityStack({ worker: true, env: { LOG_LEVEL: 'debug' } });
const { get, send, deploy } = api;

describe('no token and no restricted value reaches a log line or an audit entry', () => {
  /** Every restricted value sent. */
  const secrets: string[] = [];
  const secret = (what: string): string => {
    secrets.push(`${what}-${randomUUID()}`);
    return secrets[secrets.length - 1]!;
  };
  /** A token sent other than through `get`/`send` (which note theirs in `api.tokensSent`). */
  const remember = (token: string): string => {
    api.tokensSent.add(token);
    return token;
  };
  /** The correlation id of every request sent. */
  const ids: string[] = [];

  /** Sends `request`, which must answer `status` (later steps build on it), and notes its correlation id. */
  async function step(name: string, request: () => Test, status: number): Promise<Response> {
    const res = await request();
    if (res.status !== status)
      throw new Error(`${name}: ${res.status}, not ${status}: ${JSON.stringify(res.body)}`);
    ids.push(res.headers['x-correlation-id']);
    return res;
  }

  beforeAll(async () => {
    const team = await createTeam(api.stack);
    const service = await createService(api.stack, team.name);
    const env = await readyEnvironment(api.stack, service.id, 'dev');
    const keeper = caller('TEAM_ADMIN', [team.name]);
    const outsider = caller('TEAM_ADMIN', [uniq('elsewhere')]);
    const forged = (payload: object, key: string) =>
      remember(
        jwt.sign({ sub: uniq('forger'), roles: ['PLATFORM_ADMIN'], teams: [], ...payload }, key, {
          algorithm: 'HS256',
        }),
      );
    const now = Math.floor(Date.now() / 1000);
    const envs = environmentsUrl(service.id);
    const deployments = deploymentsUrl(service.id, env.id);
    remember(keeper.token);
    const REQUESTS: [string, () => Test, number][] = [
      [
        'restricted tag',
        () =>
          send(
            'post',
            '/api/services',
            { name: uniq('s'), team: team.name, tags: { ...TAGS, api_token: secret('tag') } },
            keeper.token,
          ),
        400,
      ],
      [
        'restricted tag in an update',
        () =>
          send(
            'patch',
            `/api/services/${service.id}`,
            { tags: { ...TAGS, Client_Secret: secret('patch') } },
            keeper.token,
          ),
        400,
      ],
      [
        'restricted environment config',
        () =>
          send(
            'post',
            envs,
            {
              name: 'leak',
              tier: 'dev',
              config: { db: { host: 'db', Password: secret('env') }, list: [{ TOKEN: secret('env-list') }] },
            },
            keeper.token,
          ),
        400,
      ],
      [
        'restricted deployment config',
        () =>
          send(
            'post',
            deployments,
            { version: '1.0.0', config: { aws: { SECRET_ACCESS_KEY: secret('deploy') } } },
            keeper.token,
          ),
        400,
      ],
      [
        'restricted config from a refused caller',
        () =>
          send(
            'post',
            envs,
            { name: 'leak', tier: 'dev', config: { password: secret('denied') } },
            outsider.token,
          ),
        403,
      ],
      [
        'restricted config in an invalid body',
        () =>
          send(
            'post',
            envs,
            { name: 'leak', tier: 'dev', config: { password: secret('schema') }, extra: true },
            keeper.token,
          ),
        400,
      ],
      [
        'restricted config in a dry run',
        () =>
          send(
            'post',
            '/api/policies/evaluate',
            {
              action: 'deployment.create',
              payload: { version: '1.0.0', config: { token: secret('dry-run') } },
            },
            keeper.token,
          ),
        200,
      ],
      [
        'token signed with another key',
        () => get('/api/teams', forged({ exp: now + 600 }, 'another-secret-that-is-long-enough-0123456789')),
        401,
      ],
      ['expired token', () => get('/api/teams', forged({ exp: now - 60 }, TEST_SECRET)), 401],
      [
        'garbage token',
        () => api.stack.http.get('/api/teams').set('Authorization', `Bearer ${secret('not-a-jwt')}`),
        401,
      ],
      [
        'valid token in the query string only',
        () => api.stack.http.get(`/api/teams?access_token=${keeper.token}&token=${keeper.token}`),
        401,
      ],
    ];
    for (const [name, request, status] of REQUESTS) await step(name, request, status);
    // And a deployment that goes through, so the worker logs under the keeper's request too.
    await deploy(keeper.token, service.id, env.id, { version: '1.0.0' }, 'succeeded');

    // The kinds of call the other security files make, each with a token of its own.
    const developer = caller('DEVELOPER', [team.name]);
    const approver = caller('TEAM_ADMIN', [team.name]);
    const platform = caller('PLATFORM_ADMIN');
    const lookalike = caller(
      ['TEAM_ADMIN', 'DEVELOPER'],
      [team.name.toUpperCase(), ` ${team.name}`, `${team.name}\u200b`],
    );
    const policy = uniq('secrets').replace(/-/g, '_');
    const put = { kind: 'mandatory_tags', enabled: false, config: { tags: ['cost_center'] } };
    const other = (
      await step(
        'team by a platform admin',
        () => send('post', '/api/teams', { name: uniq('other') }, platform.token),
        201,
      )
    ).body;
    await step(
      'team update',
      () => send('patch', `/api/teams/${other.id}`, { display_name: 'Other' }, platform.token),
      200,
    );
    await step(
      'team update refused',
      () => send('patch', `/api/teams/${other.id}`, { display_name: 'Mine' }, keeper.token),
      403,
    );
    const mine = (
      await step(
        'service',
        () => send('post', '/api/services', { name: uniq('s'), team: team.name, tags: TAGS }, keeper.token),
        201,
      )
    ).body;
    await step(
      'service update',
      () => send('patch', `/api/services/${mine.id}`, { description: 'kept' }, keeper.token),
      200,
    );
    await step(
      'service update refused',
      () => send('patch', `/api/services/${mine.id}`, { description: 'mine' }, developer.token),
      403,
    );
    await step(
      'service update by look-alike team claims',
      () => send('patch', `/api/services/${mine.id}`, { description: 'mine' }, lookalike.token),
      403,
    );
    await step('policy', () => send('put', `/api/policies/${policy}`, put, platform.token), 200);
    await step('policy refused', () => send('put', `/api/policies/${policy}`, put, keeper.token), 403);
    await step(
      'environment refused',
      () => send('post', envs, { name: 'qa', tier: 'dev' }, developer.token),
      403,
    );
    const staging = (
      await step(
        'environment',
        () => send('post', envs, { name: 'staging', tier: 'staging' }, keeper.token),
        202,
      )
    ).body;
    const prod = (
      await step(
        'prod environment',
        () => send('post', envs, { name: 'prod', tier: 'prod' }, keeper.token),
        202,
      )
    ).body;
    await waitForEnvironment(api.stack, service.id, staging.id);
    await waitForEnvironment(api.stack, service.id, prod.id);
    await step(
      'deployment by look-alike team claims',
      () => send('post', deploymentsUrl(service.id, staging.id), { version: '1.0.0' }, lookalike.token),
      403,
    );

    /** A deployment by the developer, waited for until `status`. */
    const trigger = async (envId: number, status: string): Promise<number> => {
      const res = await step(
        `deployment to ${status}`,
        () => send('post', deploymentsUrl(service.id, envId), { version: '1.0.0' }, developer.token),
        202,
      );
      await waitForStatus(api.stack, res.body.id, status);
      return res.body.id;
    };
    await trigger(staging.id, 'succeeded');
    const approved = await trigger(prod.id, 'awaiting_approval');
    await step(
      'approval refused',
      () => send('post', `/api/deployments/${approved}/approvals`, { decision: 'approve' }, developer.token),
      403,
    );
    await step(
      'approval',
      () => send('post', `/api/deployments/${approved}/approvals`, { decision: 'approve' }, keeper.token),
      202,
    );
    await waitForStatus(api.stack, approved, 'succeeded');
    const rejected = await trigger(prod.id, 'awaiting_approval');
    await step(
      'rejection',
      () =>
        send(
          'post',
          `/api/deployments/${rejected}/approvals`,
          { decision: 'reject', comment: 'not today' },
          approver.token,
        ),
      202,
    );
    await waitForStatus(api.stack, rejected, 'rejected');
    const cancelled = await trigger(prod.id, 'awaiting_approval');
    await step(
      'cancellation refused',
      () => send('post', `/api/deployments/${cancelled}/cancel`, undefined, outsider.token),
      403,
    );
    await step(
      'cancellation',
      () =>
        send('post', `/api/deployments/${cancelled}/cancel`, { reason: 'changed my mind' }, developer.token),
      202,
    );
    await waitForStatus(api.stack, cancelled, 'cancelled');

    for (const reader of [keeper, developer, outsider, lookalike, platform]) {
      await step('team read', () => get(`/api/teams/${other.id}`, reader.token), 200);
      await step('service read', () => get(`/api/services/${service.id}`, reader.token), 200);
      await step('deployment read', () => get(`/api/deployments/${approved}`, reader.token), 200);
      await step('job read', () => get(`/api/jobs/${staging.job_id}`, reader.token), 200);
    }
    await step('audit read', () => get(`/api/audit-logs?team=${team.name}`, keeper.token), 200);
    await step('audit read refused', () => get('/api/audit-logs', developer.token), 403);
    await step(
      'audit read refused, as the longest subject',
      () => get('/api/audit-logs', tokenFor('L'.repeat(255), ['DEVELOPER'])),
      403,
    );
    await step(
      'a subject the API refuses',
      () => get('/api/audit-logs', tokenFor('a\u202eb', ['DEVELOPER'])),
      401,
    );

    // A forged correlation id, sent raw (Node's client refuses the CRLF in it).
    const forgedId = uniq('fwd');
    const raw = await rawRequest(
      api.stack.server,
      'POST',
      '/api/teams',
      `Authorization: Bearer ${remember(platform.token)}\r\nX-Correlation-Id: ${forgedId}\r\nSet-Cookie: x=1`,
      JSON.stringify({ name: uniq('raw') }),
    );
    if (raw.status !== 201) throw new Error(`forged correlation id: ${raw.status}`);
    ids.push(forgedId);
  });

  it('logs every request it sent (at debug level) and the worker’s run of its deployments', () => {
    // Not vacuous: the scan below reads lines about each of these requests.
    const logged = new Set(logLines().map((line) => line['correlation_id']));
    expect(ids.filter((id) => !logged.has(id))).toEqual([]);
    expect(logLines().map((line) => line['msg'])).toContain('deployment status changed');
  });

  it('audits the guardrail refusals with the restricted values replaced', async () => {
    const { rows: refusals } = await api.pg.query(
      `select details from audit_log where correlation_id = any($1) and outcome = 'violation' order by id`,
      [ids],
    );
    expect(refusals.map((r: { details: { attempted: unknown } }) => r.details.attempted)).toEqual([
      expect.objectContaining({ tags: expect.objectContaining({ api_token: '[redacted]' }) }),
      expect.objectContaining({ tags: expect.objectContaining({ Client_Secret: '[redacted]' }) }),
      expect.objectContaining({
        config: { db: { host: 'db', Password: '[redacted]' }, list: [{ TOKEN: '[redacted]' }] },
      }),
      expect.objectContaining({ config: { aws: { SECRET_ACCESS_KEY: '[redacted]' } } }),
    ]);
  });

  it('scans every captured log line and audit row for every token sent and every restricted value', async () => {
    const { rows: audit } = await api.pg.query('select a::text as row from audit_log a');
    const haystack = [...capturedLines, ...audit.map((r: { row: string }) => r.row)];
    // A whole token, or its signature alone (the part that makes it usable).
    const needles = [...[...api.tokensSent].flatMap((token) => [token, token.split('.')[2]!]), ...secrets];
    const leaks = haystack.flatMap((text) =>
      needles
        .filter((needle) => text.includes(needle))
        .map((needle) => `${needle.slice(0, 16)}… in ${text.slice(0, 300)}`),
    );
    expect(leaks).toEqual([]);
  });
});
