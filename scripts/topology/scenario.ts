/**
 * What a user of the compose stack does first, through the API: the README's three examples as
 * written (the seed's curl calls: ids 1 in the paths, curl's form Content-Type, which the API reads
 * as JSON anyway), then version 1.0.0 walked dev → staging → prod, the prod deployment approved by a
 * second PLATFORM_ADMIN after the requester was refused, and the runs found through Temporal's
 * PostgreSQL visibility by the platform's search attributes.
 */
import type { Client as TemporalClient } from '@temporalio/client';
import { signToken } from '../../src/auth/tokens';
import { eventually } from '../../test/support/eventually';
import { triggerDeployment, waitForEnvironment, waitForStatus } from '../../test/support/fixtures';
import { HttpClient, type Body } from '../../test/support/http-client';
import type { Steps } from './steps';

/** What the examples need. */
export interface ScenarioOptions {
  steps: Steps;
  apiUrl: string;
  jwtSecret: string;
  temporal: TemporalClient;
  /** Longest wait for one environment or deployment to reach its state. */
  waitMs: number;
}

/** The header curl sends with `-d` and no `-H Content-Type`. */
const CURL_FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

/** Fails with `message` unless `ok`. */
function expect(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

/** The three README examples, run as written; answers the service and the dev environment. */
async function readmeExamples(opts: ScenarioOptions, alice: HttpClient) {
  const { steps } = opts;
  const service = await steps.run(
    'README 1: register service payments',
    async (): Promise<Body> => {
      const body = await alice.must(
        'POST',
        '/api/services',
        201,
        { name: 'payments', tags: { owner: 'payments', data_sensitivity: 'internal' } },
        CURL_FORM,
      );
      expect(body.id === 1, `the README's next calls use service 1, the API answered id ${body.id}`);
      return body;
    },
    (s) => `service ${s.id} ${s.name}`,
  );
  const dev = await steps.run(
    'README 2: provision dev (ready)',
    async (): Promise<Body> => {
      const env = await alice.must(
        'POST',
        '/api/services/1/environments',
        202,
        { name: 'dev', tier: 'dev' },
        CURL_FORM,
      );
      expect(env.id === 1, `the README's next call uses environment 1, the API answered id ${env.id}`);
      await waitForEnvironment(alice, 1, 1, opts.waitMs);
      return env;
    },
    (e) => `environment ${e.id}, job ${e.job_id}`,
  );
  const devDeployment = await steps.run(
    'README 3: deploy 1.0.0 to dev (deploy-bot)',
    async (): Promise<Body> => {
      const created = await alice.must(
        'POST',
        '/api/services/1/environments/1/deployments',
        202,
        { version: '1.0.0', initiated_by: 'deploy-bot' },
        CURL_FORM,
      );
      const done = await waitForStatus(alice, created.id, 'succeeded', opts.waitMs, 250);
      expect(
        done.initiated_by === 'deploy-bot' && done.requested_by === 'alice',
        `initiated_by/requested_by are ${done.initiated_by}/${done.requested_by}, expected deploy-bot/alice`,
      );
      return done;
    },
    (d) => `deployment ${d.id} succeeded, job ${d.job_id}`,
  );
  return { service, dev, devDeployment };
}

/** `GET /api/jobs/:job_id` answers Temporal's own view of a finished run. */
async function jobCompleted(api: HttpClient, jobId: string): Promise<string> {
  const job = await api.must('GET', `/api/jobs/${jobId}`, 200);
  expect(
    job.status === 'completed' && job.source === 'temporal',
    `job ${jobId}: status ${job.status} from ${job.source}, expected completed from temporal`,
  );
  return `${jobId} completed (source ${job.source})`;
}

/** The workflow IDs `query` lists, once they are exactly `expected` (visibility may lag the runs by a moment). */
async function listedExactly(temporal: TemporalClient, query: string, expected: string[], waitMs: number) {
  let seen: string[] = [];
  await eventually(
    async () => {
      seen = [];
      for await (const run of temporal.workflow.list({ query })) seen.push(run.workflowId);
      return seen.length === expected.length && expected.every((id) => seen.includes(id));
    },
    waitMs,
    () => `${query} to list ${expected.join(', ')} (listed: ${seen.join(', ') || 'none'})`,
    500,
  );
}

/**
 * The runs as Temporal's visibility store (PostgreSQL here) finds them by the platform's search
 * attributes: every run of the service by the attributes it started with, and the prod deployment
 * also by the status its workflow upserted when it ended.
 */
async function visibleBySearchAttributes(
  temporal: TemporalClient,
  runs: Body[],
  prodDeployment: Body,
  waitMs: number,
) {
  const all = "IdpService = 'payments'";
  await listedExactly(
    temporal,
    all,
    runs.map((r: Body) => r.job_id),
    waitMs,
  );
  const upserted = `${all} AND IdpKind = 'deployment' AND IdpTier = 'prod' AND IdpStatus = 'succeeded'`;
  await listedExactly(temporal, upserted, [prodDeployment.job_id], waitMs);
  return `${runs.length} runs by IdpService, ${prodDeployment.job_id} by IdpKind+IdpTier+IdpStatus`;
}

/** Runs the whole scenario as steps; throws at the first that fails. */
export async function runScenario(opts: ScenarioOptions): Promise<void> {
  const { steps } = opts;
  const token = (sub: string): string =>
    signToken(opts.jwtSecret, { sub, roles: ['PLATFORM_ADMIN'], teams: [], ttl: '1h' });
  const alice = new HttpClient(opts.apiUrl, token('alice'));
  const bob = alice.as(token('bob'));
  const { service, dev, devDeployment } = await readmeExamples(opts, alice);

  await steps.run('README: GET /api/deployments/1, /api/jobs/deploy-payments-dev-1', async () => {
    const deployment = await alice.must('GET', '/api/deployments/1', 200);
    expect(
      deployment.job_id === devDeployment.job_id && deployment.job_id === 'deploy-payments-dev-1',
      `deployment 1's job is ${deployment.job_id}, the README says deploy-payments-dev-1`,
    );
    return jobCompleted(alice, 'deploy-payments-dev-1');
  });
  const [staging, prod] = await steps.run(
    'provision staging and prod (ready)',
    async (): Promise<Body[]> => {
      const envs: Body[] = [];
      for (const tier of ['staging', 'prod'])
        envs.push(
          await alice.must('POST', `/api/services/${service.id}/environments`, 202, { name: tier, tier }),
        );
      for (const env of envs) await waitForEnvironment(alice, service.id, env.id, opts.waitMs);
      return envs;
    },
    (envs) => envs.map((e) => e.job_id).join(', '),
  );
  const stagingDeployment = await steps.run(
    'deploy 1.0.0 to staging',
    async (): Promise<Body> => {
      const created = await triggerDeployment(alice, service.id, staging.id, { version: '1.0.0' });
      return waitForStatus(alice, created.id, 'succeeded', opts.waitMs, 250);
    },
    (d) => `deployment ${d.id} succeeded`,
  );
  const prodDeployment = await steps.run(
    'deploy 1.0.0 to prod (awaiting_approval)',
    async (): Promise<Body> => {
      const created = await triggerDeployment(alice, service.id, prod.id, { version: '1.0.0' });
      return waitForStatus(alice, created.id, 'awaiting_approval', opts.waitMs, 250);
    },
    (d) => `deployment ${d.id} awaiting_approval`,
  );
  await steps.run('the requester may not approve', async () => {
    await alice.must('POST', `/api/deployments/${prodDeployment.id}/approvals`, 403, { decision: 'approve' });
    return 'alice: 403';
  });
  await steps.run(
    'another PLATFORM_ADMIN approves; prod succeeded',
    async (): Promise<Body> => {
      await bob.must('POST', `/api/deployments/${prodDeployment.id}/approvals`, 202, { decision: 'approve' });
      const done = await waitForStatus(alice, prodDeployment.id, 'succeeded', opts.waitMs, 250);
      expect(
        done.approvals.some((a: Body) => a.approver === 'bob' && a.decision === 'approve'),
        `bob's approval is not on the deployment: ${JSON.stringify(done.approvals)}`,
      );
      return done;
    },
    (d) => `deployment ${d.id} succeeded, approved by bob`,
  );
  await steps.run('GET /api/jobs/:job_id of the prod run', () => jobCompleted(alice, prodDeployment.job_id));
  await steps.run('runs listed through PostgreSQL visibility', () =>
    visibleBySearchAttributes(
      opts.temporal,
      [dev, staging, prod, devDeployment, stagingDeployment, prodDeployment],
      prodDeployment,
      opts.waitMs,
    ),
  );
  await steps.run('no 5xx answered', async () => {
    const errors = alice.serverErrors();
    expect(errors.length === 0, `5xx answers: ${JSON.stringify(errors).slice(0, 500)}`);
    return `${alice.seen.length} calls`;
  });
}
