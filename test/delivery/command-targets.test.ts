/**
 * Command targets with real executables (test/fixtures/commands), run by a real worker whose
 * DRIVER_COMMANDS_DIR is that folder: the contract's environment and stdin, exit codes, the kept
 * output (live at GET /api/jobs/:job_id/logs), SIGTERM then SIGKILL on cancel.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditLog } from '../../src/domain/entities';
import {
  admin,
  auth,
  createService,
  createTarget,
  provisionOn,
  triggerDeployment,
  waitForEnvironment,
  waitForStatus,
} from '../support/fixtures';
import { eventually, startStack, type TestStack } from '../support/stack';

const COMMANDS = path.resolve(__dirname, '../fixtures/commands');
const WORKER_SECRET = 'worker-only-value-7f3a';

let stack: TestStack;
beforeAll(async () => {
  // A variable the worker has: no command may see it.
  process.env['IDP_TEST_WORKER_SECRET'] = WORKER_SECRET;
  stack = await startStack({ worker: true, env: { DRIVER_COMMANDS_DIR: COMMANDS } });
});
afterAll(async () => {
  delete process.env['IDP_TEST_WORKER_SECRET'];
  await stack.close();
});

/** A service with a dev environment provisioned by the `ok.sh` command, then moved onto `command`. */
async function envRunning(command: string, extra: Record<string, unknown> = {}) {
  const provisioner = await createTarget(stack, 'command', { command: 'ok.sh' });
  const service = await createService(stack);
  const env = await provisionOn(stack, service.id, provisioner.name);
  await waitForEnvironment(stack, service.id, env.id);
  const target = await createTarget(stack, 'command', { command, ...extra });
  const moved = await stack.http
    .patch(`/api/services/${service.id}/environments/${env.id}`)
    .set(auth(admin))
    .send({ target: target.name });
  expect(moved.status).toBe(200);
  return { service, env, target, provisioner };
}

const logsOf = async (jobId: string): Promise<string> => {
  const res = await stack.http.get(`/api/jobs/${jobId}/logs`).set(auth(admin));
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toContain('text/plain');
  return res.text;
};

describe('command targets', () => {
  it('provisions and deploys with exactly the contract environment and the job on stdin; output readable as the job logs', async () => {
    const { service, env, provisioner } = await envRunning('ok.sh', { args: ['--chart', 'app'] });
    const provisioned = await logsOf(env.job_id);
    expect(provisioned).toContain(
      `action=provision job=${env.job_id} service=${service.name} env=dev tier=dev version=none deployment=none`,
    );
    expect(provisioner.name).toBeTruthy();

    const dep = await triggerDeployment(stack, service.id, env.id, {
      version: '1.4.0',
      config: { replicas: 2 },
    });
    const done = await waitForStatus(stack, dep.id, 'succeeded');
    expect(done.timeline.at(-1).detail).toContain("command 'ok.sh'");
    const out = await logsOf(dep.job_id);
    expect(out).toContain(
      `action=deploy job=${dep.job_id} service=${service.name} env=dev tier=dev version=1.4.0 deployment=${dep.id}`,
    );
    expect(out).toContain('a note on stderr');
    expect(out).toContain('args=--chart app');
    const stdin = JSON.parse(/stdin=(.*)/.exec(out)![1]!);
    expect(stdin).toMatchObject({
      type: 'deployment.deploy',
      job_id: dep.job_id,
      deployment: { id: dep.id, version: '1.4.0', config: { replicas: 2 } },
      attempt: 1,
    });
    expect(stdin.callback_url).toBeUndefined();
    // A fresh folder, also its HOME, and gone afterwards.
    const [, cwd, home] = /cwd=(\S+) home=(\S+)/.exec(out)!;
    expect(cwd).toBe(home);
    expect(cwd!.startsWith(os.tmpdir())).toBe(true);
  });

  it('passes nothing else of the worker environment (a variable the worker has is unset in the command)', async () => {
    const { service, env } = await envRunning('show-env.sh');
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '1.0.0' });
    await waitForStatus(stack, dep.id, 'succeeded');
    const out = await logsOf(dep.job_id);
    expect(out).toContain('secret=unset');
    expect(out).not.toContain(WORKER_SECRET);
    const names = [...out.matchAll(/^env: ([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]);
    // bash itself adds PWD, SHLVL and _.
    expect(names.filter((n) => !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(n!)).sort()).toEqual(
      [
        'HOME',
        'IDP_ACTION',
        'IDP_DEPLOYMENT_ID',
        'IDP_ENVIRONMENT',
        'IDP_JOB_ID',
        'IDP_SERVICE',
        'IDP_TIER',
        'IDP_VERSION',
        'PATH',
      ].sort(),
    );
  });

  it('keeps the last 256 KiB of a command that prints 1 MiB', async () => {
    const { service, env } = await envRunning('big-output.sh');
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '1.0.0' });
    await waitForStatus(stack, dep.id, 'succeeded');
    const out = await logsOf(dep.job_id);
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(256 * 1024);
    expect(Buffer.byteLength(out)).toBeGreaterThan(255 * 1024);
    expect(out).toContain('LAST-LINE');
    expect(out).not.toContain('FIRST-LINE');
  });

  it('retries exit 75: 75, 75, then 0 ends succeeded after three runs', async () => {
    const counter = path.join(mkdtempSync(path.join(os.tmpdir(), 'idp-flaky-')), 'runs');
    const { service, env } = await envRunning('flaky.sh', { args: [counter] });
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '1.0.0' });
    await waitForStatus(stack, dep.id, 'succeeded', 60_000);
    expect(readFileSync(counter, 'utf8').trim()).toBe('3');
    const out = await logsOf(dep.job_id);
    expect(out).toContain('[idp] attempt 1');
    expect(out).toContain('[idp] attempt 3');
    expect(out).toContain('done on run 3');
  });

  it('fails on any other exit with the last stderr line as the error', async () => {
    const { service, env } = await envRunning('fail.sh');
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '1.0.0' });
    const failed = await waitForStatus(stack, dep.id, 'failed');
    expect(failed.error).toContain("command 'fail.sh'");
    expect(failed.error).toContain('exited 3: image registry.example.com/app:9.9.9 not found');
  });

  it('on cancel sends SIGTERM, then SIGKILL after 10 s to a command that ignores SIGTERM', async () => {
    const { service, env } = await envRunning('stubborn.sh');
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '1.0.0' });
    const started = await eventually(
      async () => /started pid=(\d+)/.exec(await logsOf(dep.job_id))?.[1],
      30_000,
      'the command to start',
    );
    const pid = Number(started);
    const asked = Date.now();
    expect(
      (await stack.http.post(`/api/deployments/${dep.id}/cancel`).set(auth(admin)).send({})).status,
    ).toBe(202);
    const ended = await waitForStatus(stack, dep.id, 'cancelled', 40_000);
    const took = Date.parse(ended.finished_at) - asked;
    expect(took).toBeGreaterThanOrEqual(9_500);
    expect(() => process.kill(pid, 0)).toThrow();
    expect(await logsOf(dep.job_id)).toContain('[idp] ended: cancelled');
    const audit = await stack.orm.em
      .fork()
      .find(AuditLog, { targetType: 'deployment', targetId: String(dep.id), action: 'deployment.cancelled' });
    expect(audit).toHaveLength(1);
  }, 90_000);

  it('fails, with a clear error, a command that is not in DRIVER_COMMANDS_DIR', async () => {
    const { service, env } = await envRunning('no-such-command.sh');
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '1.0.0' });
    const failed = await waitForStatus(stack, dep.id, 'failed');
    expect(failed.error).toContain("'no-such-command.sh' is not an executable in DRIVER_COMMANDS_DIR");
  });
});
