/**
 * A driver does the real work behind provisioning and deployment (a cloud API, Argo CD, Helm, …).
 * Activities call it; Temporal retries it, so each call must be safe to repeat for the same `jobId`.
 * A driver signals a permanent failure by throwing {@link DriverError} with `retryable: false`.
 */
export interface Driver {
  readonly name: string;
  /**
   * Creates (or finds, on a retry) the resources of an environment. `progress` heartbeats; `signal`
   * aborts when the job is cancelled or the worker shuts down: stop and let the abort error through.
   */
  provision(request: ProvisionRequest, progress: () => void, signal: AbortSignal): Promise<DriverResult>;
  /** Rolls `version` out to the environment; `progress` and `signal` as for {@link Driver.provision}. */
  deploy(request: DeployRequest, progress: () => void, signal: AbortSignal): Promise<DriverResult>;
}

export interface ProvisionRequest {
  jobId: string;
  service: string;
  environment: string;
  tier: string;
  config: Record<string, unknown>;
  /** The job's target (a `simulated` target's config may set `delay_ms`); absent for runs from before targets. */
  target?: { name: string; config: Record<string, unknown> };
}

export interface DeployRequest extends ProvisionRequest {
  version: string;
  environmentConfig: Record<string, unknown>;
}

export interface DriverResult {
  detail: string;
}

/** A failure reported by a driver; `retryable: false` ends the job as failed at once. */
export class DriverError extends Error {
  override name = 'DriverError';
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}
