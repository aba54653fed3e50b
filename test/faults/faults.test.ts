/**
 * Fault suite (`npm run test:faults`): with deployments in flight, kill or stop one part of the
 * platform, bring it back, and check the durable record — every deployment reaches the right end
 * state exactly once, no environment lock is left, each transition is audited once — and that the
 * API answered 503 (never another 5xx) while a dependency was down, with `/api/health` naming it.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { signToken } from '../../src/auth/tokens';
import { findTemporalCli } from '../../src/dev/temporal-server';
import { eventually, sleep } from '../support/eventually';
import {
  createTarget,
  deploySucceeded,
  promoteToProd,
  provisionOn,
  serviceWithEnvironments,
  triggerDeployment,
  waitForStatus,
  type ServiceFixture,
} from '../support/fixtures';
import { HttpClient } from '../support/http-client';
import { Client as PgClient } from 'pg';
import { callBack, startReceiver, type Receiver } from '../support/receiver';
import { ledger } from '../support/ledger';
import { startPlatform, type Platform } from '../support/platform';
import { ROOT, spawnChild, type Child } from '../support/spawn';
import { freePorts, listening } from './ports';
import { probe, type ProbeSamples } from './probe';

jest.setTimeout(600_000);

const SECRET = 'fault-suite-secret-that-is-long-enough-for-hs256';
/** A PLATFORM_ADMIN token for `sub` (requester and approver must differ on prod). */
const adminToken = (sub: string): string =>
  signToken(SECRET, { sub, roles: ['PLATFORM_ADMIN'], teams: [], ttl: '1h' });
/** The folder a scenario keeps its PostgreSQL cluster, Temporal file and logs in (emptied). */
function dataDir(name: string): string {
  const dir = path.join(ROOT, '.data/faults', `${name}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  return dir;
}
/** How long one deployment may take to reach the status awaited, a restart of a part included. */
const STEP_MS = 90_000;
/** Lines the processes logged at level error (pino: "level":50) or above. */
const errorLines = (logs: string): string[] => logs.split('\n').filter((l) => /"level":(50|60)/.test(l));

/** Figures each scenario records (how long a 503 took, how long recovery took), written for the record. */
const figures: Record<string, Record<string, number>> = {};
afterAll(() => {
  mkdirSync(path.join(ROOT, 'test-artifacts'), { recursive: true });
  writeFileSync(path.join(ROOT, 'test-artifacts/faults.json'), JSON.stringify(figures, null, 2));
});

/** Runs `fn` and returns its result with the milliseconds it took. */
async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = Date.now();
  const value = await fn();
  return [value, Date.now() - started];
}
let run = 0;
const uniqueName = (what: string): string => `${what}-${process.pid}-${++run}`;

/** Deployments in flight on `fixtures`' dev environments (rollouts of `delayMs`), once each is rolling out. */
async function inFlight(
  api: HttpClient,
  fixtures: ServiceFixture[],
  version: string,
  delayMs: number,
): Promise<number[]> {
  const created = await Promise.all(
    fixtures.map((f) =>
      triggerDeployment(api, f.service.id, f.envs.dev.id, {
        version,
        config: { simulate: { delay_ms: delayMs } },
      }),
    ),
  );
  const ids = created.map((d) => d.id as number);
  await Promise.all(ids.map((id) => waitForStatus(api, id, 'in_progress', STEP_MS)));
  return ids;
}

/** The end of every scenario: right end states, once each, audited once, no lock, no 5xx but 503. */
async function expectSettled(
  databaseUrl: string,
  api: HttpClient,
  expected: Map<number, string>,
  logs: string,
): Promise<void> {
  const ids = [...expected.keys()];
  await Promise.all(ids.map((id) => waitForStatus(api, id, expected.get(id)!, 120_000)));
  const book = await ledger(databaseUrl, ids);
  expect(Object.fromEntries(book.status)).toEqual(Object.fromEntries(expected));
  expect(book.repeatedTimeline).toEqual([]);
  expect(book.mismatches).toEqual([]);
  // No scenario sends a request that may be refused: one audited as refused is a mismatch too.
  expect(book.refusals).toEqual([]);
  expect(book.locksLeft).toBe(0);
  expect(api.serverErrors([503])).toEqual([]);
  // Every call got an answer: the API process itself never hung up or timed out (in (d) no call is
  // made while it is killed).
  expect(api.unanswered()).toEqual([]);
  // A dependency outage is logged as a warning; nothing reached the error level (a 500, a crash).
  expect(errorLines(logs)).toEqual([]);
}

/** `/api/health` answered 503 at least once while `failing` was down, and named it (and only it) each time. */
function expectHealthNaming(seen: ProbeSamples, failing: 'database' | 'temporal'): void {
  const down = seen.health.filter((h) => h.status === 503);
  expect(down.length).toBeGreaterThan(0);
  const checks = { database: 'ok', temporal: 'ok', [failing]: 'unavailable' };
  for (const h of down) expect(h.body).toMatchObject({ status: 'unavailable', failing: [failing], checks });
}

describe('one part at a time (API and worker as processes, own PostgreSQL and Temporal)', () => {
  const dir = dataDir('parts');
  let platform: Platform;
  let api: HttpClient;
  let approver: HttpClient;
  beforeAll(async () => {
    const [pg, temporal, apiPort] = (await freePorts(3)) as [number, number, number];
    platform = await startPlatform({
      name: 'faults',
      dir,
      runtime: 'tsx',
      // Always embedded: the suite must be able to stop it. Temporal on a file, to restart it on.
      postgres: { dir: path.join(dir, 'pg'), port: pg },
      persistTemporal: true,
      ports: { temporal, api: apiPort },
      taskQueue: 'faults',
      jwtSecret: SECRET,
      env: { SIMULATED_DELAY_MS: '0', WORKER_SHUTDOWN_GRACE_MS: '1000' },
    });
    api = new HttpClient(platform.apiUrl, adminToken('alice'));
    approver = api.as(adminToken('bob'));
  });
  afterAll(async () => {
    await platform?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('(a) SIGKILL of the worker: a new worker finishes every deployment once', async () => {
    const fixtures = await Promise.all(
      [1, 2, 3].map((i) => serviceWithEnvironments(api, { name: uniqueName(`worker-${i}`) })),
    );
    const prod = await promoteToProd(api, fixtures[0]!, '1.0.0', STEP_MS);
    const rolling = await inFlight(api, fixtures.slice(1), '1.0.0', 4000);

    await platform.killWorker();
    // The API does not depend on the worker: reads and health stay green.
    expect((await api.call('GET', '/api/health')).status).toBe(200);
    expect((await api.call('GET', `/api/deployments/${rolling[0]}`)).body.status).toBe('in_progress');
    await platform.startWorker();

    await approver.must('POST', `/api/deployments/${prod}/approvals`, 202, { decision: 'approve' });
    const expected = new Map([...rolling, prod].map((id) => [id, 'succeeded']));
    await expectSettled(platform.databaseUrl, api, expected, platform.logs());
  });

  it('(b) kill -9 of the Temporal server, restarted on the same file: 503 while down, then every deployment once', async () => {
    const fixtures = await Promise.all(
      [1, 2, 3].map((i) => serviceWithEnvironments(api, { name: uniqueName(`temporal-${i}`) })),
    );
    const prod = await promoteToProd(api, fixtures[0]!, '1.0.0', STEP_MS);
    const rolling = await inFlight(api, [fixtures[1]!], '1.0.0', 6000);
    const samples = probe(api, `/api/deployments/${rolling[0]}`);

    await platform.killTemporal();
    const [refused, refusedMs] = await timed(() =>
      api.call(
        'POST',
        `/api/services/${fixtures[2]!.service.id}/environments/${fixtures[2]!.envs.dev.id}/deployments`,
        { version: '1.0.0' },
      ),
    );
    const job = await api.call('GET', `/api/jobs/deploy-${fixtures[1]!.service.name}-dev-${rolling[0]}`);
    const decision = await approver.call('POST', `/api/deployments/${prod}/approvals`, {
      decision: 'approve',
    });
    await sleep(3000);
    const [, restartMs] = await timed(() => platform.startTemporal());
    const seen = await samples.stop();

    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ type: '/problems/service-unavailable', status: 503 });
    expect(job.status).toBe(503);
    expect(decision.status).toBe(503);
    expectHealthNaming(seen, 'temporal');
    // Reads come from PostgreSQL: Temporal's outage does not touch them.
    expect(seen.reads.every((s) => s === 200)).toBe(true);

    // The refused trigger left no lock: the same environment takes the next deployment.
    const [retried, recoveryMs] = await timed(() =>
      eventually(
        async () => {
          const res = await api.call(
            'POST',
            `/api/services/${fixtures[2]!.service.id}/environments/${fixtures[2]!.envs.dev.id}/deployments`,
            { version: '1.0.1' },
          );
          return res.status === 202 ? (res.body.id as number) : undefined;
        },
        60_000,
        'a trigger accepted after the restart',
      ),
    );
    figures['temporal'] = {
      trigger_503_ms: refusedMs,
      server_restart_ms: restartMs,
      first_202_after_restart_ms: recoveryMs,
    };
    // Each refused trigger (the one while down, and any sent before the API's channel reconnected)
    // is on record as failed, since its row was written before the start failed: no more, no less.
    const triggerUrl = `/api/services/${fixtures[2]!.service.id}/environments/${fixtures[2]!.envs.dev.id}/deployments`;
    const attempts = api.seen.filter((s) => s.what === `POST ${triggerUrl}`);
    expect(attempts.filter((s) => s.status !== 503 && s.status !== 202)).toEqual([]);
    const history = await api.must('GET', triggerUrl, 200);
    const failed = history.items.filter((d: { id: number }) => d.id !== retried);
    expect(failed).toHaveLength(attempts.filter((s) => s.status === 503).length);
    for (const d of failed)
      expect(d).toMatchObject({ status: 'failed', error: expect.stringContaining('Temporal unavailable') });
    // The decision answered 503 and was not recorded; sent again it is taken.
    await eventually(
      async () =>
        (await approver.call('POST', `/api/deployments/${prod}/approvals`, { decision: 'approve' }))
          .status === 202,
      60_000,
      'the approval',
    );
    const expected = new Map([...rolling, prod, retried].map((id) => [id, 'succeeded']));
    for (const d of failed) expected.set(d.id, 'failed');
    await expectSettled(platform.databaseUrl, api, expected, platform.logs());
  });

  it('(c) PostgreSQL stopped for 10 s: 503 while down, then every deployment once', async () => {
    const fixtures = await Promise.all(
      [1, 2].map((i) => serviceWithEnvironments(api, { name: uniqueName(`postgres-${i}`) })),
    );
    const prod = await promoteToProd(api, fixtures[0]!, '1.0.0', STEP_MS);
    // Rollouts that end while the database is down: their next status change waits for it.
    const rolling = await inFlight(api, [fixtures[1]!], '1.0.0', 3000);
    const samples = probe(api, `/api/services/${fixtures[1]!.service.id}`);

    await platform.stopPostgres();
    const stoppedAt = Date.now();
    const [refused, refusedMs] = await timed(() =>
      api.call(
        'POST',
        `/api/services/${fixtures[1]!.service.id}/environments/${fixtures[1]!.envs.staging.id}/deployments`,
        { version: '1.0.0' },
      ),
    );
    const decision = await approver.call('POST', `/api/deployments/${prod}/approvals`, {
      decision: 'approve',
    });
    await sleep(Math.max(0, 10_000 - (Date.now() - stoppedAt)));
    const outageMs = Date.now() - stoppedAt;
    await platform.startPostgres();
    const [, recoveryMs] = await timed(() =>
      eventually(
        async () => (await api.call('GET', '/api/health')).status === 200,
        60_000,
        'health back to 200',
      ),
    );
    figures['postgres'] = {
      outage_ms: outageMs,
      trigger_503_ms: refusedMs,
      health_200_after_restart_ms: recoveryMs,
    };
    const seen = await samples.stop();

    expect(refused.status).toBe(503);
    expect(decision.status).toBe(503);
    expectHealthNaming(seen, 'database');
    expect(seen.reads).toContain(503);
    expect(seen.reads.filter((s) => s !== 200 && s !== 503)).toEqual([]);

    await approver.must('POST', `/api/deployments/${prod}/approvals`, 202, { decision: 'approve' });
    const expected = new Map([...rolling, prod].map((id) => [id, 'succeeded']));
    await expectSettled(platform.databaseUrl, api, expected, platform.logs());
  });

  it('(e) SIGKILL of the worker while a deployment waits for its webhook target; the callback comes while none runs: succeeded, once', async () => {
    const receiver = await startReceiver();
    try {
      const target = await createTarget(api, 'webhook', { url: receiver.url }, uniqueName('hook'));
      receiver.secret = target.signing_secret;
      receiver.answer = (req) =>
        req.body['type'] === 'environment.provision'
          ? { status: 200, body: { status: 'succeeded' } }
          : { status: 202 };
      const service = await api.must('POST', '/api/services', 201, {
        name: uniqueName('hooked'),
        tags: { owner: 'platform', data_sensitivity: 'internal' },
      });
      const env = await provisionOn(api, service.id, target.name);
      await eventually(
        async () =>
          (await api.call('GET', `/api/services/${service.id}/environments/${env.id}`)).body?.status ===
          'ready',
        STEP_MS,
        'the hooked environment ready',
      );
      const dep = await triggerDeployment(api, service.id, env.id, { version: '1.0.0' });
      const sent = await receiver.waitFor('deployment.deploy', 1, STEP_MS);
      // Let the dispatch's answer reach Temporal, then lose the worker.
      await sleep(500);
      await platform.killWorker();
      const answered = await callBack(sent.body.callback_url, target.signing_secret, {
        status: 'succeeded',
        external_url: 'https://deploys.example.com/1',
      });
      expect(answered.status).toBe(202);
      expect((await api.must('GET', `/api/deployments/${dep.id}`, 200)).status).toBe('in_progress');
      await platform.startWorker();
      const done = await waitForStatus(api, dep.id, 'succeeded', STEP_MS);
      expect(done.external_url).toBe('https://deploys.example.com/1');
      // A dispatch repeated by the new worker carries the same webhook-id.
      const deploys = receiver.received.filter((r) => r.body['type'] === 'deployment.deploy');
      expect(new Set(deploys.map((r) => r.headers['webhook-id']))).toEqual(new Set([`${dep.job_id}:deploy`]));
      await expectSettled(
        platform.databaseUrl,
        api,
        new Map([[dep.id as number, 'succeeded']]),
        platform.logs(),
      );
    } finally {
      await receiver.close();
    }
  });

  it('(f) SIGKILL of the worker right after a failure is recorded: the automatic rollback still happens, once', async () => {
    const policy = await api.must('GET', '/api/policies?limit=200', 200);
    const before = policy.items.find((p: { name: string }) => p.name === 'auto_rollback');
    await api.must('PUT', '/api/policies/auto_rollback', 200, {
      kind: 'auto_rollback',
      enabled: true,
      config: { tiers: ['dev'] },
    });
    try {
      const [f] = await Promise.all([serviceWithEnvironments(api, { name: uniqueName('rollback') })]);
      await deploySucceeded(api, f!.service.id, f!.envs.dev.id, '1.0.0', STEP_MS);
      const bad = await triggerDeployment(api, f!.service.id, f!.envs.dev.id, {
        version: '2.0.0',
        config: { simulate: { fail: true, delay_ms: 3000 } },
      });
      // Watch the row itself, and lose the worker the moment `failed` is on record.
      await eventually(
        async () =>
          (await platform.sql.query('select status from deployment where id = $1', [bad.id])).rows[0]
            ?.status === 'failed',
        STEP_MS,
        'the failure on record',
        10,
      );
      await platform.killWorker();
      await platform.startWorker();
      const failed = await eventually(
        async () => {
          const d = (await api.call('GET', `/api/deployments/${bad.id}`)).body;
          return d?.rolled_back_by ? d : undefined;
        },
        STEP_MS,
        'rolled_back_by',
      );
      const rollback = await waitForStatus(api, failed.rolled_back_by, 'succeeded', STEP_MS);
      expect(rollback).toMatchObject({ kind: 'rollback', rollback_of: bad.id, version: '1.0.0' });
      const count = await platform.sql.query(
        'select count(*)::int as n from deployment where rollback_of = $1',
        [bad.id],
      );
      expect(count.rows[0].n).toBe(1);
      await expectSettled(
        platform.databaseUrl,
        api,
        new Map([
          [bad.id as number, 'failed'],
          [rollback.id as number, 'succeeded'],
        ]),
        platform.logs(),
      );
    } finally {
      await api.must('PUT', '/api/policies/auto_rollback', 200, {
        kind: before.kind,
        enabled: before.enabled,
        config: before.config,
      });
    }
  });
});

describe('(d) SIGKILL of the whole `npm run dev`', () => {
  const receivers: Receiver[] = [];
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()));
  });
  const dir = dataDir('runner');
  let ports: { DEV_PG_PORT: string; DEV_TEMPORAL_PORT: string; PORT: string };
  let env: Record<string, string>;
  beforeAll(async () => {
    // The runner's Temporal UI listens on its port + 1000.
    const [pg, temporal, apiPort] = await freePorts(3, [1000]);
    ports = { DEV_PG_PORT: String(pg), DEV_TEMPORAL_PORT: String(temporal), PORT: String(apiPort) };
    const cli = await findTemporalCli();
    if (!cli) throw new Error('no temporal CLI (see README)');
    env = {
      ...ports,
      DATA_DIR: dir,
      TEMPORAL_CLI_PATH: cli,
      JWT_SECRET: SECRET,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      SIMULATED_DELAY_MS: '0',
    };
  });
  // `npm run dev` itself, in a process group of its own: npm, tsx, the runner, PostgreSQL, Temporal.
  const start = (): Promise<Child> =>
    spawnChild({
      name: 'npm run dev',
      command: 'npm',
      args: ['run', 'dev'],
      env,
      group: true,
      ready: 'Ctrl-C stops everything',
      readyTimeoutMs: 180_000,
    });

  it('restarts on the same data folder and finishes every deployment once', async () => {
    let runner = await start();
    const api = new HttpClient(`http://127.0.0.1:${ports.PORT}`, adminToken('alice'));
    const approver = api.as(adminToken('bob'));
    try {
      const fixtures = await Promise.all(
        [1, 2].map((i) => serviceWithEnvironments(api, { name: uniqueName(`runner-${i}`) })),
      );
      const prod = await promoteToProd(api, fixtures[0]!, '1.0.0', STEP_MS);
      const rolling = await inFlight(api, [fixtures[1]!], '1.0.0', 5000);
      // A release in its soak after dev (a promotion gate of 20 s) when everything dies.
      await api.must('PUT', '/api/policies/promotion_gates', 200, {
        kind: 'promotion_gates',
        enabled: true,
        config: { gates: [{ tier: 'dev', soak: '20s' }] },
      });
      // Every event from here on goes to a receiver that takes its time: deliveries are pending when everything dies.
      const receiver = await startReceiver();
      receivers.push(receiver);
      const hook = await api.must('POST', '/api/webhooks', 201, { url: receiver.url, events: ['*'] });
      receiver.secret = hook.signing_secret;
      receiver.answer = async () => {
        await sleep(400);
        return { status: 200 };
      };
      const releasing = await serviceWithEnvironments(api, { name: uniqueName('runner-release') });
      const release = await api.must('POST', `/api/services/${releasing.service.id}/releases`, 202, {
        version: '2.0.0',
        through: 'staging',
      });
      await eventually(
        async () =>
          (await api.call('GET', `/api/releases/${release.id}`)).body?.stages?.[1]?.status === 'soaking',
        STEP_MS,
        'the release soaking',
      );

      await runner.kill('SIGKILL');
      // Every process of the group is gone: nothing answers on the API, PostgreSQL or Temporal ports.
      // (The group's other members die a moment after its leader.)
      for (const port of Object.values(ports)) {
        await eventually(async () => !(await listening(Number(port))), 10_000, `port ${port} closed`);
      }
      const logsBefore = runner.output();
      let restartMs: number;
      [runner, restartMs] = await timed(start);
      figures['runner'] = { restart_until_ready_ms: restartMs };

      expect((await api.must('GET', `/api/deployments/${prod}`, 200)).status).toBe('awaiting_approval');
      await approver.must('POST', `/api/deployments/${prod}/approvals`, 202, { decision: 'approve' });
      const resumed = await eventually(
        async () => {
          const r = (await api.call('GET', `/api/releases/${release.id}`)).body;
          return r?.status === 'succeeded' ? r : undefined;
        },
        STEP_MS,
        'the release resumed and finished',
      );
      expect(resumed.stages.map((s: { status: string }) => s.status)).toEqual(['succeeded', 'succeeded']);
      // Every event written since the subscription reached the receiver: none lost, a repeat only
      // under the same webhook-id (with the same body), and each one signed.
      const sql = new PgClient({
        connectionString: `postgres://postgres:postgres@127.0.0.1:${ports.DEV_PG_PORT}/idp`,
      });
      await sql.connect();
      try {
        const written = await eventually(
          async () => {
            const rows = await sql.query(
              'select id from event where id > (select min(event_id) - 1 from webhook_delivery where subscription_id = $1) order by id',
              [hook.id],
            );
            const ids = rows.rows.map((r: { id: string }) => String(r.id));
            const got = new Set(receiver.received.map((r) => r.headers['webhook-id']));
            return ids.length > 0 && ids.every((id) => got.has(id)) ? ids : undefined;
          },
          STEP_MS,
          'every event delivered after the restart',
        );
        const bodies = new Map<string, string>();
        for (const r of receiver.received) {
          expect(r.verified).toBe(true);
          const earlier = bodies.get(r.headers['webhook-id']!);
          if (earlier !== undefined) expect(r.raw).toBe(earlier);
          bodies.set(r.headers['webhook-id']!, r.raw);
        }
        figures['runner'] = {
          ...figures['runner'],
          events_delivered: written.length,
          repeats: receiver.received.length - bodies.size,
        };
      } finally {
        await sql.end();
      }
      const releaseDeployments: number[] = resumed.stages.map(
        (s: { deployments: { deployment_id: number }[] }) => s.deployments[0]!.deployment_id,
      );
      const expected = new Map([...rolling, prod, ...releaseDeployments].map((id) => [id, 'succeeded']));
      // The API was down (no status at all) while killed; never a 5xx.
      await expectSettled(
        `postgres://postgres:postgres@127.0.0.1:${ports.DEV_PG_PORT}/idp`,
        api,
        expected,
        logsBefore + runner.output(),
      );
    } finally {
      await runner.kill('SIGINT').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
