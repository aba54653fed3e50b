import type { TestStack } from './stack';
import { eventually, tokenFor, uniq } from './stack';

export const admin = tokenFor('root-admin', ['PLATFORM_ADMIN']);
export const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

/** Creates a team through the API. */
export async function createTeam(stack: TestStack, name = uniq('team')): Promise<{ id: number; name: string }> {
  const res = await stack.http.post('/api/teams').set(auth(admin)).send({ name });
  if (res.status !== 201) throw new Error(`team: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Registers a service (owned by `team` when given) through the API. */
export async function createService(stack: TestStack, team?: string, name = uniq('svc')): Promise<{ id: number; name: string }> {
  const res = await stack.http
    .post('/api/services')
    .set(auth(admin))
    .send({ name, tags: { owner: team ?? 'platform', data_sensitivity: 'internal' }, ...(team ? { team } : {}) });
  if (res.status !== 201) throw new Error(`service: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Provisions an environment and waits until it is ready (needs a worker). */
export async function readyEnvironment(stack: TestStack, serviceId: number, tier: string, name = tier): Promise<{ id: number; name: string; job_id: string }> {
  const res = await stack.http.post(`/api/services/${serviceId}/environments`).set(auth(admin)).send({ name, tier });
  if (res.status !== 202) throw new Error(`environment: ${res.status} ${JSON.stringify(res.body)}`);
  await eventually(async () => {
    const env = await stack.http.get(`/api/services/${serviceId}/environments/${res.body.id}`).set(auth(admin));
    return env.body.status === 'ready';
  }, 30_000, `environment ${name} ready`);
  return res.body;
}

/** Waits until deployment `id` has `status`; returns it. */
export async function waitForStatus(stack: TestStack, id: number, status: string | string[], timeoutMs = 30_000) {
  const wanted = Array.isArray(status) ? status : [status];
  return eventually(async () => {
    const res = await stack.http.get(`/api/deployments/${id}`).set(auth(admin));
    return wanted.includes(res.body.status) ? res.body : undefined;
  }, timeoutMs, `deployment ${id} ${wanted.join('|')}`);
}

/** Triggers a deployment and waits until it succeeded (for walking a version up the tiers). */
export async function deploySucceeded(stack: TestStack, serviceId: number, envId: number, version: string) {
  const res = await stack.http.post(`/api/services/${serviceId}/environments/${envId}/deployments`).set(auth(admin)).send({ version });
  if (res.status !== 202) throw new Error(`deploy: ${res.status} ${JSON.stringify(res.body)}`);
  return waitForStatus(stack, res.body.id, 'succeeded');
}
