/**
 * Rows left behind by an API process that died between its commit and its run's start: the
 * reconciler starts their runs, once, and leaves rows that have one alone.
 */
import { insertDeployment } from '../../src/db/deployments';
import { Deployment, Environment, Service } from '../../src/domain/entities';
import { Client, Connection } from '@temporalio/client';
import type { Logger } from 'pino';
import { createLogger } from '../../src/logger';
import { RESTART_EVERY, newSweepCursor, reconcileOrphans } from '../../src/services/reconciler';
import { temporalJobs } from '../../src/temporal/jobs';
import { createService, readyEnvironment, waitForStatus } from '../support/fixtures';
import { startStack, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: true });
});
afterAll(async () => {
  await stack.close();
});

/** What a trigger commits before it starts the run: the row and its audit entry, no run. */
async function orphanOf(serviceId: number, envId: number, correlationId: string): Promise<Deployment> {
  const em = stack.orm.em.fork();
  const service = await em.findOneOrFail(Service, serviceId);
  const env = await em.findOneOrFail(Environment, envId);
  return stack.orm.em.fork().transactional((tx) =>
    insertDeployment(
      tx,
      {
        service,
        environment: env,
        team: null,
        version: '1.0.0',
        config: {},
        initiatedBy: null,
        requestedBy: 'root-admin',
        approvalsRequired: 0,
        approvalTimeoutSeconds: 0,
        idempotencyKey: null,
        requestHash: null,
        correlationId,
      },
      { actor: 'root-admin', actorRoles: ['PLATFORM_ADMIN'], correlationId },
    ),
  );
}

/** The reconciler's dependencies on the stack, through `temporal` (the stack's client unless given). */
const depsOf = (logger: Logger, temporal: Client = stack.temporal) => ({
  config: stack.config,
  orm: stack.orm,
  jobs: temporalJobs(temporal, stack.config, logger),
});

it('starts the run of a deployment whose API died after its commit, once', async () => {
  const svc = await createService(stack);
  const envRow = await readyEnvironment(stack, svc.id, 'dev');
  const orphan = await orphanOf(svc.id, envRow.id, 'crashed-request');
  const logger = createLogger('silent');
  const deps = depsOf(logger);
  // Too young: a live request may be about to start it.
  expect(await reconcileOrphans(deps, logger)).toBe(0);
  expect(await reconcileOrphans(deps, logger, { olderThanMs: 0 })).toBe(1);
  await waitForStatus(stack, orphan.id, 'succeeded');
  // Its run exists now: nothing more to start, for this row or any other.
  expect(await reconcileOrphans(deps, logger, { olderThanMs: 0 })).toBe(0);
  expect((await stack.orm.em.fork().findOneOrFail(Deployment, orphan.id)).status).toBe('succeeded');
});

it('reaches a row behind a batch of rows whose runs exist: each sweep goes on where the last stopped', async () => {
  const orphans: Deployment[] = [];
  for (let i = 0; i < 3; i++) {
    const svc = await createService(stack);
    const env = await readyEnvironment(stack, svc.id, 'dev');
    orphans.push(await orphanOf(svc.id, env.id, `crashed-request-${i}`));
  }
  const logger = createLogger('silent');
  const deps = depsOf(logger);
  const cursor = newSweepCursor();
  const sweep = () => reconcileOrphans(deps, logger, { olderThanMs: 0, batch: 2, cursor });
  // The first two (a batch) get their runs and the sweep stops after them; the next one reads past
  // them, pending or not by then (a backlog waiting for a worker stays pending), and finds the third.
  expect(await sweep()).toBe(2);
  expect(cursor.deployment).toBe(orphans[1]!.id);
  expect(await sweep()).toBe(1);
  // Fewer than a batch: the next sweep starts from the first row again, with nothing left to start.
  expect(cursor.deployment).toBe(0);
  expect(await sweep()).toBe(0);
  for (const o of orphans) await waitForStatus(stack, o.id, 'succeeded');
});

it('reads a page again when a start in it failed (Temporal unreachable), and tries every row of it', async () => {
  const orphans: Deployment[] = [];
  for (let i = 0; i < 3; i++) {
    const svc = await createService(stack);
    const env = await readyEnvironment(stack, svc.id, 'dev');
    orphans.push(await orphanOf(svc.id, env.id, `crashed-while-temporal-down-${i}`));
  }
  const logger = createLogger('silent');
  // A client of a Temporal server that is not there (nothing listens on port 1), without retries.
  const unreachable = new Client({
    connection: Connection.lazy({ address: '127.0.0.1:1', interceptors: [] }),
  });
  const cursor = newSweepCursor();
  expect(
    await reconcileOrphans(depsOf(logger, unreachable), logger, { olderThanMs: 0, batch: 2, cursor }),
  ).toBe(0);
  // The failed page is not passed over: the cursor stays before it.
  expect(cursor.deployment).toBe(0);
  await unreachable.connection.close();
  // Temporal is back: the same cursor starts the first page, then the row after it.
  const sweep = () => reconcileOrphans(depsOf(logger), logger, { olderThanMs: 0, batch: 2, cursor });
  expect(await sweep()).toBe(2);
  expect(await sweep()).toBe(1);
  for (const o of orphans) await waitForStatus(stack, o.id, 'succeeded');
});

it('starts again from the first row every so many sweeps, for a row the cursor had passed', async () => {
  const svc = await createService(stack);
  const env = await readyEnvironment(stack, svc.id, 'dev');
  const orphan = await orphanOf(svc.id, env.id, 'committed-late');
  const logger = createLogger('silent');
  // A cursor already past the row (it committed after the sweep read beyond its id).
  // The next sweep is a restart: it reads from the first row, not after the cursor.
  const cursor = { ...newSweepCursor(), deployment: orphan.id, sweeps: RESTART_EVERY - 1 };
  expect(await reconcileOrphans(depsOf(logger), logger, { olderThanMs: 0, cursor })).toBe(1);
  await waitForStatus(stack, orphan.id, 'succeeded');
});
