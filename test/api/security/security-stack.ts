/**
 * The platform one security file runs against, started for that file alone: its own database, API
 * and (optionally) worker, a second `pg` connection for the oracle (./oracle.ts), and the requests
 * the files send through it. Nothing here is shared between files, so they run in any order.
 */
import { Client as PgClient } from 'pg';
import type { Test } from 'supertest';
import { admin, auth, waitForStatus } from '../../support/fixtures';
import { startStack, type TestStack } from '../../support/stack';

/** Tags every guardrail accepts. */
export const TAGS = { owner: 'security-suite', data_sensitivity: 'internal' };
/** The statuses a deployment ends in. */
export const ENDED = ['succeeded', 'failed', 'rejected', 'expired', 'cancelled'];

export const environmentsUrl = (serviceId: number) => `/api/services/${serviceId}/environments`;
export const deploymentsUrl = (serviceId: number, envId: number) =>
  `${environmentsUrl(serviceId)}/${envId}/deployments`;

/** A file's stack and what it sends through it; `stack` and `pg` exist from the file's first hook on. */
export interface SecurityStack {
  readonly stack: TestStack;
  /** A second connection with real bind parameters: the oracle, independent of the ORM under test. */
  readonly pg: PgClient;
  /** Every bearer token sent: through {@link get} and {@link send}, and admin's (the fixture builders send it). */
  readonly tokensSent: Set<string>;
  get(url: string, token?: string): Test;
  send(method: 'post' | 'patch' | 'put', url: string, body?: object, token?: string): Test;
  /** Triggers a deployment as `token`, expects 202 and waits until it reaches one of `statuses`. */
  deploy(
    token: string,
    serviceId: number,
    envId: number,
    body: object,
    statuses: string | string[],
  ): ReturnType<typeof waitForStatus>;
  /** The newest deployment of an environment, if it has one. */
  latestDeployment(serviceId: number, envId: number): Promise<{ id: number; status: string } | undefined>;
}

/**
 * Starts a stack for the calling test file in a `beforeAll` and closes it in an `afterAll`, both at
 * the level this is called from (call it at the top of the file).
 */
export function useSecurityStack(
  opts: { worker?: boolean; env?: Record<string, string> } = {},
): SecurityStack {
  let stack: TestStack | undefined;
  let pg: PgClient | undefined;
  beforeAll(async () => {
    stack = await startStack(opts);
    pg = new PgClient({ connectionString: stack.databaseUrl });
    await pg.connect();
  });
  afterAll(async () => {
    await pg?.end();
    await stack?.close();
  });
  const running = (): { stack: TestStack; pg: PgClient } => {
    if (!stack || !pg)
      throw new Error('no security stack: its beforeAll has not run, or failed (see that error)');
    return { stack, pg };
  };
  const tokensSent = new Set<string>([admin]);
  const handle: SecurityStack = {
    get stack() {
      return running().stack;
    },
    get pg() {
      return running().pg;
    },
    tokensSent,
    get: (url, token = admin) => {
      tokensSent.add(token);
      return handle.stack.http.get(url).set(auth(token));
    },
    send: (method, url, body, token = admin) => {
      tokensSent.add(token);
      const req = handle.stack.http[method](url).set(auth(token));
      return body === undefined ? req : req.send(body);
    },
    deploy: async (token, serviceId, envId, body, statuses) => {
      const res = await handle.send('post', deploymentsUrl(serviceId, envId), body, token);
      if (res.status !== 202) throw new Error(`deploy: ${res.status} ${JSON.stringify(res.body)}`);
      return waitForStatus(handle.stack, res.body.id, statuses);
    },
    latestDeployment: async (serviceId, envId) =>
      (await handle.get(`${deploymentsUrl(serviceId, envId)}?limit=1`)).body.items[0],
  };
  return handle;
}
