/**
 * Determinism guard: recorded histories (committed under test/fixtures/histories, covering every
 * path of both workflows) and fresh ones are replayed through the current workflow code. A change
 * that would break running workflows fails here; guard it with `patched()`.
 * `RECORD_HISTORIES=1 npx jest test/workflows/replay.test.ts` refreshes the fixtures;
 * `RECORD_HISTORIES=<tag>` records them beside the old ones as `<name>.<tag>.json` (after a patched
 * change both the old histories and the new path's must keep replaying).
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Worker } from '@temporalio/worker';
import {
  admin,
  auth,
  createService,
  createTeam,
  deploySucceeded,
  readyEnvironment,
  waitForStatus,
} from '../support/fixtures';
import { startStack, tokenFor, workflowBundle, type TestStack } from '../support/stack';

const FIXTURES = path.resolve(__dirname, '../fixtures/histories');

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: true });
});
afterAll(async () => {
  await stack.close();
});

const replayOptions = async () => ({ workflowBundle: await workflowBundle() });
void replayOptions;

it('replays the committed histories with the current workflow code', () => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
  expect(files.length).toBeGreaterThanOrEqual(9);
  // In a plain Node process: protobufjs's JSON conversion does not survive jest's module registry.
  const out = execFileSync(
    path.resolve(__dirname, '../../node_modules/.bin/tsx'),
    ['scripts/replay-histories.ts', FIXTURES],
    {
      cwd: path.resolve(__dirname, '../..'),
      encoding: 'utf8',
    },
  );
  expect(out).toContain(`replayed ${files.length} histories`);
});

it('replays fresh runs of every path (provision, dev, approved, rejected, cancelled)', async () => {
  const team = await createTeam(stack);
  const service = await createService(stack, team.name);
  const dev = await readyEnvironment(stack, service.id, 'dev');
  const staging = await readyEnvironment(stack, service.id, 'staging');
  const prod = await readyEnvironment(stack, service.id, 'prod');
  const devRun = await deploySucceeded(stack, service.id, dev.id, '1.0.0');
  await deploySucceeded(stack, service.id, staging.id, '1.0.0');
  const trigger = async () => {
    const res = await stack.http
      .post(`/api/services/${service.id}/environments/${prod.id}/deployments`)
      .set(auth(admin))
      .send({ version: '1.0.0' });
    return waitForStatus(stack, res.body.id, 'awaiting_approval');
  };
  const approved = await trigger();
  const ap = await stack.http
    .post(`/api/deployments/${approved.id}/approvals`)
    .set(auth(tokenFor('approver', ['PLATFORM_ADMIN'])))
    .send({ decision: 'approve' });
  expect(ap.body).toMatchObject({ status: 'in_progress' });
  await waitForStatus(stack, approved.id, 'succeeded');
  const rejected = await trigger();
  await stack.http
    .post(`/api/deployments/${rejected.id}/approvals`)
    .set(auth(tokenFor('approver', ['PLATFORM_ADMIN'])))
    .send({ decision: 'reject' });
  await waitForStatus(stack, rejected.id, 'rejected');
  const cancelled = await trigger();
  await stack.http.post(`/api/deployments/${cancelled.id}/cancel`).set(auth(admin));
  await waitForStatus(stack, cancelled.id, 'cancelled');

  const runs: Record<string, string> = {
    provision: dev.job_id,
    'deploy-dev': devRun.job_id,
    'deploy-prod-approved': approved.job_id,
    'deploy-prod-rejected': rejected.job_id,
    'deploy-prod-cancelled': cancelled.job_id,
  };
  // Closed runs only: wait until each has closed in Temporal.
  for (const id of Object.values(runs))
    await stack.temporal.workflow
      .getHandle(id)
      .result()
      .catch(() => undefined);
  const histories = stack.temporal.workflow
    .list({
      query: `WorkflowId IN (${Object.values(runs)
        .map((id) => `'${id}'`)
        .join(', ')})`,
    })
    .intoHistories();
  let replayed = 0;
  for await (const result of Worker.runReplayHistories(await replayOptions(), histories)) {
    expect(result.error).toBeUndefined();
    replayed++;
  }
  expect(replayed).toBe(5);

  if (process.env['RECORD_HISTORIES']) {
    mkdirSync(FIXTURES, { recursive: true });
    for (const [name, id] of Object.entries(runs)) {
      // The CLI's JSON is the format `temporal workflow show -o json` gives operators too.
      const json = execFileSync(process.env['IDP_TEST_TEMPORAL_CLI']!, [
        'workflow',
        'show',
        '-w',
        id,
        '-o',
        'json',
        '--address',
        process.env['IDP_TEST_TEMPORAL_ADDRESS']!,
      ]);
      const tag = process.env['RECORD_HISTORIES'] === '1' ? '' : `.${process.env['RECORD_HISTORIES']}`;
      writeFileSync(path.join(FIXTURES, `${name}${tag}.json`), json);
    }
  }
});
