/**
 * A driver does the real work behind provisioning and deployment (a cloud API, Argo CD, Helm, …).
 * Activities call it; Temporal retries it, so each call must be safe to repeat for the same `jobId`.
 * A driver signals a permanent failure by throwing {@link DriverError} with `retryable: false`.
 */
export interface Driver {
  readonly name: string;
  /** Creates (or finds, on a retry) the resources of an environment. */
  provision(request: ProvisionRequest, progress: () => void): Promise<DriverResult>;
  /** Rolls `version` out to the environment. */
  deploy(request: DeployRequest, progress: () => void): Promise<DriverResult>;
}

export interface ProvisionRequest {
  jobId: string;
  service: string;
  environment: string;
  tier: string;
  config: Record<string, unknown>;
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
