/**
 * More than one of each: two API processes and three worker processes on one PostgreSQL and one
 * Temporal server, triggers spread over both APIs; one worker and one API SIGKILLed mid-load. Every
 * 202 has its deployment, every deployment ends once, no lock is left, and the audit log, the
 * timelines and the event outbox agree (the ledger).
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { signToken } from '../../src/auth/tokens';
import { ACTIVE_DEPLOYMENT_STATUSES, type DeploymentStatus } from '../../src/domain/lifecycle';
import { eventually } from '../support/eventually';
import { serviceWithEnvironments, waitForStatus, type ServiceFixture } from '../support/fixtures';
import { HttpClient } from '../support/http-client';
import { ledger } from '../support/ledger';
import { startPlatform, type Platform } from '../support/platform';
import { ROOT, type Child } from '../support/spawn';
import { freePorts } from './ports';

jest.setTimeout(600_000);

const SECRET = 'many-processes-secret-that-is-long-enough-for-hs256';
const token = (sub: string): string =>
  signToken(SECRET, { sub, roles: ['PLATFORM_ADMIN'], teams: [], ttl: '1h' });
const SERVICES = 6;
const PER_SERVICE = 8;

describe('two APIs and three workers', () => {
  const dir = path.join(ROOT, '.data/faults', `many-${process.pid}`);
  let platform: Platform;
  let apis: HttpClient[];
  let extraApi: Child;
  let extraWorkers: Child[];
  beforeAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    const [pg, temporal, api1, api2] = (await freePorts(4)) as [number, number, number, number];
    platform = await startPlatform({
      name: 'many',
      dir,
      runtime: 'tsx',
      postgres: process.env['DATABASE_URL']
        ? { adminUrl: process.env['DATABASE_URL'] }
        : { dir: path.join(dir, 'pg'), port: pg },
      ports: { temporal, api: api1 },
      taskQueue: 'many',
      jwtSecret: SECRET,
      env: { SIMULATED_DELAY_MS: '300', WORKER_SHUTDOWN_GRACE_MS: '1000' },
    });
    extraApi = await platform.startExtraApi(api2);
    extraWorkers = [await platform.startExtraWorker(), await platform.startExtraWorker()];
    const first = new HttpClient(platform.apiUrl, token('alice'));
    apis = [first, new HttpClient(`http://127.0.0.1:${api2}`, token('alice'), { seen: first.seen })];
  });
  afterAll(async () => {
    await platform?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every 202 and ends every deployment once through a SIGKILL of one worker and one API', async () => {
    const fixtures: ServiceFixture[] = [];
    for (let i = 0; i < SERVICES; i++)
      fixtures.push(await serviceWithEnvironments(apis[0]!, { name: `many-${i}` }));
    const accepted = new Map<number, string>();
    let triggered = 0;
    let killed = false;
    const killHalfWay = async (): Promise<void> => {
      if (killed || triggered < (SERVICES * PER_SERVICE) / 3) return;
      killed = true;
      await Promise.all([extraWorkers[0]!.kill('SIGKILL'), extraApi.kill('SIGKILL')]);
    };
    // Each service deploys its versions one after another (one environment, one lock), through the
    // two APIs in turn; when an API does not answer, the other one takes the trigger. A 409 means the
    // killed API took the trigger before it died (its row holds the environment until the surviving
    // API's reconciler starts its run and it ends): wait, by reading, for the environment to be free,
    // then trigger again. Waiting by posting would start deployments this test never waits for.
    const activeIn = async (serviceId: number, envId: number): Promise<number> => {
      const res = await apis[0]!.call(
        'GET',
        `/api/services/${serviceId}/environments/${envId}/deployments?limit=200`,
      );
      if (res.status !== 200) return -1;
      return (res.body.items as { status: DeploymentStatus }[]).filter((d) =>
        ACTIVE_DEPLOYMENT_STATUSES.includes(d.status),
      ).length;
    };
    await Promise.all(
      fixtures.map(async (f, s) => {
        for (let v = 0; v < PER_SERVICE; v++) {
          const url = `/api/services/${f.service.id}/environments/${f.envs.dev.id}/deployments`;
          let res = await apis[(s + v) % 2]!.call('POST', url, { version: `1.${v}.0` });
          if (res.status === 0) res = await apis[0]!.call('POST', url, { version: `1.${v}.0` });
          triggered++;
          await killHalfWay();
          for (let tries = 0; res.status === 409 && tries < 3; tries++) {
            await eventually(
              async () => (await activeIn(f.service.id, f.envs.dev.id)) === 0,
              120_000,
              `the environment of ${f.service.name} free again`,
              250,
            );
            res = await apis[0]!.call('POST', url, { version: `1.${v}.0` });
          }
          if (res.status !== 202)
            throw new Error(`trigger ${url}: ${res.status} ${JSON.stringify(res.body)}`);
          accepted.set(res.body.id as number, res.body.job_id as string);
          await waitForStatus(
            apis[0]!,
            res.body.id as number,
            ['succeeded', 'failed', 'cancelled'],
            120_000,
            200,
          );
        }
      }),
    );
    expect(killed).toBe(true);
    // Every 202 has its deployment, ended once, every record agreeing; no lock anywhere.
    const book = await ledger(platform.databaseUrl);
    for (const id of accepted.keys()) expect([id, book.status.get(id)]).toEqual([id, 'succeeded']);
    expect([...book.status].filter(([, s]) => s !== 'succeeded')).toEqual([]);
    expect(book.repeatedTimeline).toEqual([]);
    expect(book.mismatches).toEqual([]);
    expect(book.locksLeft).toBe(0);
    // The API that lived never answered a 5xx; only calls to the killed one went unanswered.
    expect(apis[0]!.serverErrors()).toEqual([]);
    // Every run ends too. A run whose last workflow task sat in the killed worker's sticky queue
    // closes a few seconds after its row says `succeeded` (the task times out there and moves to
    // the shared queue), so this waits for it, briefly; a run that never ends still fails here.
    let running = -1;
    await eventually(
      async () => {
        running = (
          await platform.temporal.workflow.count(
            `WorkflowType = 'deployVersion' AND ExecutionStatus = 'Running'`,
          )
        ).count;
        return running === 0;
      },
      60_000,
      () => `every deployVersion run closed (${running} still running)`,
      500,
    ).catch(() => undefined);
    expect(running).toBe(0);
    // Every version was accepted once; the rows the killed API left behind ended too (above).
    expect(accepted.size).toBe(SERVICES * PER_SERVICE);
    expect(book.status.size).toBeGreaterThanOrEqual(accepted.size);
  });
});
