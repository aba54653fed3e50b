import { setTimeout as sleep } from 'node:timers/promises';
import {
  DriverError,
  type DeployRequest,
  type Driver,
  type DriverResult,
  type ProvisionRequest,
} from './driver';

/**
 * Per-request switches, read from the environment's or deployment's `config.simulate`:
 * `{"simulate": {"fail": true, "delay_ms": 500}}`. For tests and demos.
 */
interface Simulation {
  fail: boolean;
  delayMs: number | undefined;
}

function simulation(...configs: Record<string, unknown>[]): Simulation {
  const result: Simulation = { fail: false, delayMs: undefined };
  for (const config of configs) {
    const s = config['simulate'];
    if (s === null || typeof s !== 'object') continue;
    const o = s as Record<string, unknown>;
    if (o['fail'] === true) result.fail = true;
    if (typeof o['delay_ms'] === 'number' && o['delay_ms'] >= 0)
      result.delayMs = Math.min(o['delay_ms'], 600_000);
  }
  return result;
}

/** A driver that only waits: `delayMs` by default, reporting progress every second. */
export class SimulatedDriver implements Driver {
  readonly name = 'simulated';

  constructor(private readonly delayMs: number) {}

  async provision(
    request: ProvisionRequest,
    progress: () => void,
    signal: AbortSignal,
  ): Promise<DriverResult> {
    const sim = simulation(request.config);
    await this.wait(sim.delayMs ?? this.targetDelay(request) ?? this.delayMs, progress, signal);
    if (sim.fail) throw new DriverError(`simulated provisioning failure for ${request.jobId}`, false);
    return { detail: `simulated ${request.tier} environment '${request.environment}' ready` };
  }

  async deploy(request: DeployRequest, progress: () => void, signal: AbortSignal): Promise<DriverResult> {
    const sim = simulation(request.environmentConfig, request.config);
    await this.wait(sim.delayMs ?? this.targetDelay(request) ?? this.delayMs, progress, signal);
    if (sim.fail) throw new DriverError(`simulated deployment failure for ${request.jobId}`, false);
    return { detail: `simulated rollout of ${request.version} to '${request.environment}'` };
  }

  /** The target's `delay_ms`, when it sets one. */
  private targetDelay(request: ProvisionRequest): number | undefined {
    const ms = request.target?.config['delay_ms'];
    return typeof ms === 'number' && ms >= 0 ? ms : undefined;
  }

  /** Waits `ms`, heartbeating every second; a cancellation (the signal) ends the wait with an AbortError. */
  private async wait(ms: number, progress: () => void, signal: AbortSignal): Promise<void> {
    let left = ms;
    while (left > 0) {
      const step = Math.min(left, 1000);
      await sleep(step, undefined, { signal });
      left -= step;
      progress();
    }
  }
}
