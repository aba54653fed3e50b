/**
 * Rows left behind by an API process that died between its commit and its run's start: the
 * reconciler starts their runs, once, and leaves rows that have one alone.
 */
import { insertDeployment } from '../../src/db/deployments';
import { Deployment, Environment, Service } from '../../src/domain/entities';
import { createLogger } from '../../src/logger';
import { reconcileOrphans } from '../../src/services/reconciler';
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

it('starts the run of a deployment whose API died after its commit, once', async () => {
  const svc = await createService(stack);
  const envRow = await readyEnvironment(stack, svc.id, 'dev');
  const em = stack.orm.em.fork();
  const service = await em.findOneOrFail(Service, svc.id);
  const env = await em.findOneOrFail(Environment, envRow.id);
  // What a trigger commits before it starts the run: the row and its audit entry, no run.
  const orphan = await stack.orm.em.fork().transactional((tx) =>
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
        correlationId: 'crashed-request',
      },
      { actor: 'root-admin', actorRoles: ['PLATFORM_ADMIN'], correlationId: 'crashed-request' },
    ),
  );
  const logger = createLogger('silent');
  const deps = {
    config: stack.config,
    orm: stack.orm,
    jobs: temporalJobs(stack.temporal, stack.config, logger),
  };
  // Too young: a live request may be about to start it.
  expect(await reconcileOrphans(deps, logger)).toBe(0);
  expect(await reconcileOrphans(deps, logger, 0)).toBe(1);
  await waitForStatus(stack, orphan.id, 'succeeded');
  // Its run exists now: nothing more to start, for this row or any other.
  expect(await reconcileOrphans(deps, logger, 0)).toBe(0);
  expect((await stack.orm.em.fork().findOneOrFail(Deployment, orphan.id)).status).toBe('succeeded');
});
