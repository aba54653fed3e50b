/**
 * The simulated driver stops when its job is cancelled: a cancelled rollout must not keep running
 * (and keep a shutting-down worker waiting) until its delay has passed.
 */
import { SimulatedDriver } from '../../src/activities/drivers/simulated.driver';

const request = {
  jobId: 'deploy-svc-dev-1',
  service: 'svc',
  environment: 'dev',
  tier: 'dev',
  version: '1.0.0',
  config: {},
  environmentConfig: {},
};

describe('SimulatedDriver', () => {
  it('ends a ten-minute rollout with an AbortError once the signal aborts, after the heartbeats so far', async () => {
    const controller = new AbortController();
    const beats: number[] = [];
    const rollout = new SimulatedDriver(600_000).deploy(
      request,
      () => beats.push(Date.now()),
      controller.signal,
    );
    setTimeout(() => controller.abort(), 1200);
    await expect(rollout).rejects.toMatchObject({ name: 'AbortError' });
    expect(beats).toHaveLength(1);
  });

  it('finishes a short rollout, and fails one that asks to fail without retry', async () => {
    const driver = new SimulatedDriver(0);
    const signal = new AbortController().signal;
    await expect(
      driver.deploy({ ...request, config: { simulate: { delay_ms: 10 } } }, () => undefined, signal),
    ).resolves.toEqual({
      detail: "simulated rollout of 1.0.0 to 'dev'",
    });
    await expect(
      driver.provision({ ...request, config: { simulate: { fail: true } } }, () => undefined, signal),
    ).rejects.toMatchObject({
      name: 'DriverError',
      retryable: false,
    });
  });
});
