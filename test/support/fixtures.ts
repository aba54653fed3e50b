/**
 * The fixture builders of every suite and script: teams, services, ready environments and
 * deployments, made through the API with an {@link HttpClient} (a jest stack's API is called as the
 * PLATFORM_ADMIN `root-admin`). Each throws when the API does not answer what the step needs.
 */
import { eventually } from './eventually';
import { HttpClient, type Body } from './http-client';
import { tokenFor } from './tokens';
import { uniq } from './uniq';

/** The token a jest stack's fixtures are made with. */
export const admin = tokenFor('root-admin', ['PLATFORM_ADMIN']);
/** supertest's `.set()` argument for `token`. */
export const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

/** Where a fixture is made: an HTTP client, or a jest stack (./stack.ts) listening at `baseUrl`. */
export type ApiTarget = HttpClient | { baseUrl: string };

const stackClients = new WeakMap<object, HttpClient>();
function clientOf(target: ApiTarget): HttpClient {
  if (target instanceof HttpClient) return target;
  let client = stackClients.get(target);
  if (!client) stackClients.set(target, (client = new HttpClient(target.baseUrl, admin)));
  return client;
}

export type Tier = 'dev' | 'staging' | 'prod';
export const TIERS: readonly Tier[] = ['dev', 'staging', 'prod'];

/** A service with its dev, staging and prod environments (the bodies the API answered). */
export interface ServiceFixture {
  service: { id: number; name: string };
  envs: Record<Tier, { id: number; name: string; job_id: string }>;
}

/** Creates a team. */
export async function createTeam(
  target: ApiTarget,
  name = uniq('team'),
): Promise<{ id: number; name: string }> {
  return clientOf(target).must('POST', '/api/teams', 201, { name });
}

/** Registers a service, owned by `team` (and tagged with it) when given. */
export async function createService(
  target: ApiTarget,
  team?: string,
  name = uniq('svc'),
): Promise<{ id: number; name: string }> {
  return clientOf(target).must('POST', '/api/services', 201, {
    name,
    tags: { owner: team ?? 'platform', data_sensitivity: 'internal' },
    ...(team ? { team } : {}),
  });
}

/** Starts provisioning an environment (202); does not wait for it. */
export async function provisionEnvironment(
  target: ApiTarget,
  serviceId: number,
  tier: string,
  name = tier,
): Promise<{ id: number; name: string; job_id: string }> {
  return clientOf(target).must('POST', `/api/services/${serviceId}/environments`, 202, { name, tier });
}

/** Waits until environment `envId` of `serviceId` is ready (needs a worker). */
export async function waitForEnvironment(
  target: ApiTarget,
  serviceId: number,
  envId: number,
  timeoutMs = 30_000,
): Promise<void> {
  const api = clientOf(target);
  await eventually(
    async () =>
      (await api.call('GET', `/api/services/${serviceId}/environments/${envId}`)).body?.status === 'ready',
    timeoutMs,
    `environment ${envId} ready`,
  );
}

/** Provisions an environment and waits until it is ready (needs a worker). */
export async function readyEnvironment(
  target: ApiTarget,
  serviceId: number,
  tier: string,
  name = tier,
  timeoutMs = 30_000,
): Promise<{ id: number; name: string; job_id: string }> {
  const env = await provisionEnvironment(target, serviceId, tier, name);
  await waitForEnvironment(target, serviceId, env.id, timeoutMs);
  return env;
}

/**
 * Registers a service and provisions dev, staging and prod, then (unless `ready: false`, for a
 * caller that waits for many at once) waits until the three are ready.
 */
export async function serviceWithEnvironments(
  target: ApiTarget,
  opts: { name?: string; team?: string; ready?: boolean; timeoutMs?: number } = {},
): Promise<ServiceFixture> {
  const service = await createService(target, opts.team, opts.name);
  const envs = {} as ServiceFixture['envs'];
  for (const tier of TIERS) envs[tier] = await provisionEnvironment(target, service.id, tier);
  if (opts.ready !== false) {
    for (const tier of TIERS)
      await waitForEnvironment(target, service.id, envs[tier].id, opts.timeoutMs ?? 60_000);
  }
  return { service, envs };
}

/** Triggers a deployment (202); returns the deployment the API answered. */
export async function triggerDeployment(
  target: ApiTarget,
  serviceId: number,
  envId: number,
  body: { version: string } & Record<string, unknown>,
  headers?: Record<string, string>,
): Promise<Body> {
  return clientOf(target).must(
    'POST',
    `/api/services/${serviceId}/environments/${envId}/deployments`,
    202,
    body,
    headers,
  );
}

/** Waits until deployment `id` has `status` (or one of them); returns it. The timeout's message holds the last answer. */
export async function waitForStatus(
  target: ApiTarget,
  id: number,
  status: string | readonly string[],
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<Body> {
  const api = clientOf(target);
  const wanted: readonly string[] = typeof status === 'string' ? [status] : status;
  let last = 'no answer yet';
  return eventually(
    async () => {
      const res = await api.call('GET', `/api/deployments/${id}`);
      last = `${res.status} ${JSON.stringify(res.body)?.slice(0, 200)}`;
      return res.status === 200 && wanted.includes(res.body.status) ? res.body : undefined;
    },
    timeoutMs,
    () => `deployment ${id} ${wanted.join('|')} (last: ${last})`,
    everyMs,
  );
}

/** Triggers a deployment and waits until it succeeded (for walking a version up the tiers). */
export async function deploySucceeded(
  target: ApiTarget,
  serviceId: number,
  envId: number,
  version: string,
  timeoutMs = 30_000,
): Promise<Body> {
  const created = await triggerDeployment(target, serviceId, envId, { version });
  return waitForStatus(target, created.id, 'succeeded', timeoutMs);
}

/** Walks `version` through dev and staging (waiting for each) and starts prod; returns the prod deployment's id, awaiting approval. */
export async function promoteToProd(
  target: ApiTarget,
  fixture: ServiceFixture,
  version: string,
  timeoutMs = 30_000,
): Promise<number> {
  await deploySucceeded(target, fixture.service.id, fixture.envs.dev.id, version, timeoutMs);
  await deploySucceeded(target, fixture.service.id, fixture.envs.staging.id, version, timeoutMs);
  const prod = await triggerDeployment(target, fixture.service.id, fixture.envs.prod.id, { version });
  await waitForStatus(target, prod.id, 'awaiting_approval', timeoutMs);
  return prod.id as number;
}

/** Creates a delivery target (201); answers it with its `signing_secret`. */
export async function createTarget(
  target: ApiTarget,
  kind: 'webhook' | 'command' | 'simulated',
  config: Record<string, unknown>,
  name = uniq('target'),
): Promise<{ name: string; kind: string; config: Record<string, unknown>; signing_secret: string }> {
  return clientOf(target).must('POST', '/api/targets', 201, { name, kind, config });
}

/** Provisions an environment on `targetName` (202); does not wait for it. */
export async function provisionOn(
  target: ApiTarget,
  serviceId: number,
  targetName: string,
  tier = 'dev',
  extra: Record<string, unknown> = {},
): Promise<{ id: number; name: string; job_id: string }> {
  return clientOf(target).must('POST', `/api/services/${serviceId}/environments`, 202, {
    name: tier,
    tier,
    target: targetName,
    ...extra,
  });
}
