/**
 * Durability across worker loss: a deployment whose worker process is SIGKILLed (or sent SIGTERM)
 * mid-rollout is finished by a new worker, exactly once, and releases its environment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { AuditLog, Deployment } from '../../src/domain/entities';
import { admin, auth, createService, readyEnvironment, waitForStatus } from '../support/fixtures';
import { startStack, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack.close();
});

/**
 * Runs `npm run start:worker`'s code as a separate process on this stack's queue: one process
 * (`node --import tsx`), since the `tsx` command's wrapper would take the SIGKILL in its place.
 */
function workerProcess(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker/main.ts'], {
    cwd: path.resolve(__dirname, '../..'),
    env: {
      ...process.env,
      DATABASE_URL: stack.databaseUrl,
      TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
      TEMPORAL_TASK_QUEUE: stack.config.TEMPORAL_TASK_QUEUE,
      IDP_ENCRYPTION_KEY: stack.config.IDP_ENCRYPTION_KEY,
      PUBLIC_URL: stack.baseUrl,
      WORKER_SHUTDOWN_GRACE_MS: '1000',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('worker started')) resolve(child);
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`worker exited early (${code}): ${out.slice(-2000)}`)));
  });
}

const exited = (child: ChildProcess) =>
  new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));

it.each(['SIGKILL', 'SIGTERM'] as const)(
  'a deployment survives %s of its worker and completes once on a new one',
  async (signal) => {
    // Environments come from an in-process worker, which then stops: the child takes over alone.
    await stack.startWorker();
    const service = await createService(stack);
    const env = await readyEnvironment(stack, service.id, 'dev');
    await stack.stopWorker();

    const child = await workerProcess();
    const res = await stack.http
      .post(`/api/services/${service.id}/environments/${env.id}/deployments`)
      .set(auth(admin))
      .send({ version: '1.0.0', config: { simulate: { delay_ms: 4000 } } });
    expect(res.status).toBe(202);
    await waitForStatus(stack, res.body.id, 'in_progress');
    await new Promise((r) => setTimeout(r, 1000));
    child.kill(signal);
    await exited(child);
    expect((await stack.http.get(`/api/deployments/${res.body.id}`).set(auth(admin))).body.status).toBe(
      'in_progress',
    );

    await stack.startWorker();
    const done = await waitForStatus(stack, res.body.id, 'succeeded', 60_000);
    expect(done.timeline.filter((t: { status: string }) => t.status === 'succeeded')).toHaveLength(1);
    const em = stack.orm.em.fork();
    expect(await em.count(AuditLog, { action: 'deployment.succeeded', targetId: String(res.body.id) })).toBe(
      1,
    );
    expect(
      await em.count(Deployment, {
        environmentId: env.id,
        status: { $in: ['pending', 'awaiting_approval', 'in_progress'] },
      }),
    ).toBe(0);
    await stack.stopWorker();
  },
);
