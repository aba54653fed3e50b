/**
 * Object-level access (issue 5's security suite): callers of team A walk the ids around team B's
 * rows. Writes are refused (403/404) without showing B or changing a row, each 403 audited once as
 * the caller's refusal; reads answer what any reader gets; the audit log shows A nothing of B.
 */
import type { Response, Test } from 'supertest';
import { comparable, expectCleanAnswer } from './answers';
import { caller, type Caller } from './callers';
import { lastAuditId, rowDigest } from './oracle';
import { ENDED, deploymentsUrl, environmentsUrl, useSecurityStack } from './security-stack';
import { createService, createTeam, readyEnvironment, waitForStatus } from '../../support/fixtures';
import { uniq } from '../../support/stack';

const api = useSecurityStack({ worker: true });
const { get, send, deploy } = api;

describe('object-level access: callers of team A walking the ids of team B', () => {
  const A = uniq('team-a');
  const B = uniq('team-b');
  /** Carried by B's service and deployments: no refusal may show it to A. */
  const MARK = uniq('b-private');
  const WALKERS: [string, Caller][] = [
    ['TEAM_ADMIN of A', caller('TEAM_ADMIN', [A])],
    ['DEVELOPER of A', caller('DEVELOPER', [A])],
    // Team claims that only look like B's: exact names are compared, nothing is normalised.
    [
      'TEAM_ADMIN+DEVELOPER of look-alikes of B',
      caller(['TEAM_ADMIN', 'DEVELOPER'], [B.toUpperCase(), ` ${B}`, `${B}\u200b`]),
    ],
  ];
  const b = {
    teamId: 0,
    serviceId: 0,
    envIds: [] as number[],
    deploymentIds: [] as number[],
    jobIds: [] as string[],
  };
  const a = { serviceId: 0 };
  /** Ids within 5 of B's, minus those of A's own rows (A may rightly change those). */
  const walk = {
    teams: [] as number[],
    services: [] as number[],
    environments: [] as number[],
    deployments: [] as number[],
  };

  const around = (ids: number[], mine: number[]): number[] =>
    [...new Set(ids.flatMap((id) => Array.from({ length: 11 }, (_, i) => id - 5 + i)))].filter(
      (id) => id > 0 && !mine.includes(id),
    );

  beforeAll(async () => {
    const [teamA, teamB] = await Promise.all([createTeam(api.stack, A), createTeam(api.stack, B)]);
    b.teamId = teamB.id;
    a.serviceId = (await createService(api.stack, A)).id;
    const service = await send('post', '/api/services', {
      name: uniq('b-svc'),
      team: B,
      description: MARK,
      tags: { owner: MARK, data_sensitivity: 'confidential' },
    });
    expect(service.status).toBe(201);
    b.serviceId = service.body.id;
    const [dev, staging, prod, aDev] = await Promise.all([
      readyEnvironment(api.stack, b.serviceId, 'dev'),
      readyEnvironment(api.stack, b.serviceId, 'staging'),
      readyEnvironment(api.stack, b.serviceId, 'prod'),
      readyEnvironment(api.stack, a.serviceId, 'dev'),
    ]);
    b.envIds = [dev.id, staging.id, prod.id];
    // B's deployments ended and active (waiting for an approval: a state that holds still).
    const bAdmin = caller('TEAM_ADMIN', [B]).token;
    const deployments = [
      await deploy(bAdmin, b.serviceId, dev.id, { version: '1.0.0', initiated_by: MARK }, 'succeeded'),
      await deploy(bAdmin, b.serviceId, staging.id, { version: '1.0.0', initiated_by: MARK }, 'succeeded'),
      await deploy(
        bAdmin,
        b.serviceId,
        prod.id,
        { version: '1.0.0', initiated_by: MARK },
        'awaiting_approval',
      ),
    ];
    b.deploymentIds = deployments.map((d) => d.id);
    b.jobIds = [...deployments.map((d) => d.job_id), dev.job_id, prod.job_id];
    walk.teams = around([teamB.id], [teamA.id]);
    walk.services = around([b.serviceId], [a.serviceId]);
    walk.environments = around(b.envIds, [aDev.id]);
    walk.deployments = around(b.deploymentIds, []);
  });

  afterAll(async () => {
    // Leave no workflow waiting on the dev server, which every test file shares.
    await send('post', `/api/deployments/${b.deploymentIds[2]}/cancel`);
    await waitForStatus(api.stack, b.deploymentIds[2]!, ENDED);
  });

  interface Write {
    ids: () => number[];
    send: (id: number, token: string) => Test;
    /** What B's own ids get (the neighbours may not exist: 404). */
    onB: 403 | 404;
    bIds: () => number[];
  }
  const WRITES: [string, Write][] = [
    [
      'PATCH /api/teams/:id',
      {
        ids: () => walk.teams,
        bIds: () => [b.teamId],
        onB: 403,
        send: (id, t) => send('patch', `/api/teams/${id}`, { display_name: 'taken over' }, t),
      },
    ],
    [
      'PATCH /api/services/:id {description}',
      {
        ids: () => walk.services,
        bIds: () => [b.serviceId],
        onB: 403,
        send: (id, t) => send('patch', `/api/services/${id}`, { description: 'taken over' }, t),
      },
    ],
    [
      'PATCH /api/services/:id {team: A}',
      {
        ids: () => walk.services,
        bIds: () => [b.serviceId],
        onB: 403,
        send: (id, t) => send('patch', `/api/services/${id}`, { team: A }, t),
      },
    ],
    [
      'POST /api/services/:id/environments',
      {
        ids: () => walk.services,
        bIds: () => [b.serviceId],
        onB: 403,
        send: (id, t) => send('post', environmentsUrl(id), { name: uniq('e'), tier: 'dev' }, t),
      },
    ],
    [
      'POST …/environments/:envId/deployments of B',
      {
        ids: () => walk.environments,
        bIds: () => b.envIds,
        onB: 403,
        send: (id, t) => send('post', deploymentsUrl(b.serviceId, id), { version: '1.0.0' }, t),
      },
    ],
    // A's service in the path, B's environment below it: the pair must not resolve.
    [
      'POST …/environments/:envId/deployments under A',
      {
        ids: () => walk.environments,
        bIds: () => b.envIds,
        onB: 404,
        send: (id, t) => send('post', deploymentsUrl(a.serviceId, id), { version: '1.0.0' }, t),
      },
    ],
    [
      'POST /api/deployments/:id/approvals approve',
      {
        ids: () => walk.deployments,
        bIds: () => b.deploymentIds,
        onB: 403,
        send: (id, t) => send('post', `/api/deployments/${id}/approvals`, { decision: 'approve' }, t),
      },
    ],
    [
      'POST /api/deployments/:id/approvals reject',
      {
        ids: () => walk.deployments,
        bIds: () => b.deploymentIds,
        onB: 403,
        send: (id, t) => send('post', `/api/deployments/${id}/approvals`, { decision: 'reject' }, t),
      },
    ],
    [
      'POST /api/deployments/:id/cancel',
      {
        ids: () => walk.deployments,
        bIds: () => b.deploymentIds,
        onB: 403,
        send: (id, t) => send('post', `/api/deployments/${id}/cancel`, undefined, t),
      },
    ],
  ];

  it.each(WALKERS.flatMap(([who, c]) => WRITES.map(([what, w]) => [who, what, c, w] as const)))(
    '%s: %s on ids around B is 403/404, shows none of B and changes nothing',
    async (_who, _what, walker, write) => {
      const digest = await rowDigest(api.pg);
      const since = await lastAuditId(api.pg);
      const answers = new Map<number, Response>();
      for (const id of write.ids()) answers.set(id, await write.send(id, walker.token));
      for (const res of answers.values()) expectCleanAnswer(res);
      const unexpected = [...answers].filter(
        ([, res]) => ![403, 404].includes(res.status) || JSON.stringify(res.body).includes(MARK),
      );
      expect(unexpected.map(([id, res]) => `${id} → ${res.status} ${JSON.stringify(res.body)}`)).toEqual([]);
      expect(write.bIds().map((id) => answers.get(id)?.status)).toEqual(write.bIds().map(() => write.onB));
      expect(await rowDigest(api.pg)).toEqual(digest);
      // The only entries written meanwhile are this caller's refusals, one per 403.
      const { rows } = await api.pg.query('select actor, outcome from audit_log where id > $1 order by id', [
        since,
      ]);
      const refusals = [...answers.values()].filter((res) => res.status === 403).length;
      expect(rows).toEqual(
        Array.from({ length: refusals }, () => ({ actor: walker.sub, outcome: 'denied' })),
      );
    },
  );

  /**
   * Reading the catalog is open to every authenticated caller (the contract's first row), so the walk
   * cannot expect 403/404 there; what it checks is that a caller of A gets exactly what a platform
   * admin gets for the same URL (200 or the same 404), never more and never a 5xx.
   */
  it.each(WALKERS)(
    '%s reads B’s objects exactly as any reader does (reads are open by contract)',
    async (_who, walker) => {
      const urls = [
        ...walk.teams.map((id) => `/api/teams/${id}`),
        ...walk.services.flatMap((id) => [`/api/services/${id}`, environmentsUrl(id)]),
        ...walk.environments.flatMap((id) => [
          `${environmentsUrl(b.serviceId)}/${id}`,
          deploymentsUrl(b.serviceId, id),
        ]),
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
    },
  );

  it.each(WALKERS)(
    '%s filtering the audit log by B’s target ids sees none of B’s entries',
    async (_who, walker) => {
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
            for (const entry of res.body.items ?? [])
              if (!walker.teams.includes(entry.team)) seen.push(`${query}: ${entry.action} of ${entry.team}`);
          }
        }
      }
      expect(seen).toEqual([]);
      const byTeam = await get(`/api/audit-logs?team=${B}`, walker.token);
      expect(byTeam.body.items ?? []).toEqual([]);
      // Not vacuous: the same filters show B's entries to a platform admin.
      const reference = await get(`/api/audit-logs?target_type=deployment&target_id=${b.deploymentIds[0]}`);
      expect(reference.body.items.map((e: { team: string }) => e.team)).toContain(B);
    },
  );
});
