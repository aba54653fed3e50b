/**
 * Bench phase: many prod deployments waiting for approval at once on one worker. The time from an
 * approval to `succeeded` with 5,000 waiting beside the same with 10 waiting, the worker's memory
 * while they wait, and then every one approved: none lost, none stuck.
 */
import type { Platform } from '../../test/support/platform';
import { sleep } from '../../test/support/eventually';
import type { Body } from '../../test/support/http-client';
import { concurrentLoad } from './load';
import { details, figure, pct, round } from './figures';

/** Inserts a service with one staging environment where 1.0.0 succeeded, and `count` ready prod environments. */
async function seed(p: Platform, count: number): Promise<{ serviceId: number; prodIds: number[] }> {
  const { rows: svc } = await p.sql.query<{ id: number }>(
    `insert into service (name, tags, created_at, updated_at)
     values ('bench-waiting', '{"owner":"bench","data_sensitivity":"internal"}', now(), now()) returning id`,
  );
  const serviceId = svc[0]!.id;
  const { rows: staging } = await p.sql.query<{ id: number }>(
    `insert into environment (service_id, name, tier, status, config, job_id, created_by, created_at, updated_at)
     values ($1, 'staging', 'staging', 'ready', '{}', 'provision-bench-waiting-staging', 'bench', now(), now()) returning id`,
    [serviceId],
  );
  await p.sql.query(
    `insert into deployment (job_id, service_id, environment_id, tier, version, status, requested_by, config, approvals_required,
       approval_timeout_seconds, correlation_id, timeline, created_at, updated_at, finished_at)
     values ('deploy-bench-waiting-staging-0', $1, $2, 'staging', '1.0.0', 'succeeded', 'bench', '{}', 0, 0, 'bench', '[]', now(), now(), now() - interval '1 day')`,
    [serviceId, staging[0]!.id],
  );
  const { rows: prod } = await p.sql.query<{ id: number }>(
    `insert into environment (service_id, name, tier, status, config, job_id, created_by, created_at, updated_at)
     select $1, 'prod-' || g, 'prod', 'ready', '{}', 'provision-bench-waiting-prod-' || g, 'bench', now(), now()
     from generate_series(1, $2) g order by g returning id`,
    [serviceId, count],
  );
  return { serviceId, prodIds: prod.map((r) => r.id) };
}

async function call(
  url: string,
  token: string,
  method: string,
  body?: unknown,
): Promise<{ status: number; body: Body }> {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** Waits until `ids` are all in `status` (polling PostgreSQL). */
async function allIn(p: Platform, ids: number[], status: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await p.sql.query<{ n: string }>(
      'select count(*) as n from deployment where id = any($1::int[]) and status = $2',
      [ids, status],
    );
    if (Number(rows[0]!.n) === ids.length) return;
    if (Date.now() > deadline)
      throw new Error(`${ids.length - Number(rows[0]!.n)} of ${ids.length} not ${status}`);
    await sleep(250);
  }
}

/** Approve → `succeeded` for each of `ids`, one at a time, in ms. */
async function approvalLatencies(p: Platform, approver: string, ids: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const id of ids) {
    const t0 = process.hrtime.bigint();
    const res = await call(`${p.apiUrl}/api/deployments/${id}/approvals`, approver, 'POST', {
      decision: 'approve',
    });
    if (res.status !== 202) throw new Error(`approve ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    for (;;) {
      const { rows } = await p.sql.query<{ status: string }>('select status from deployment where id = $1', [
        id,
      ]);
      if (rows[0]!.status === 'succeeded') break;
      if (rows[0]!.status !== 'in_progress' && rows[0]!.status !== 'awaiting_approval')
        throw new Error(`deployment ${id} ended ${rows[0]!.status}`);
      await sleep(5);
    }
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

/** Triggers prod deployments of 1.0.0 to `envIds` through the API; answers their ids. */
async function trigger(
  p: Platform,
  token: string,
  serviceId: number,
  envIds: number[],
  connections: number,
): Promise<number[]> {
  const ids: number[] = [];
  let next = 0;
  const load = await concurrentLoad(envIds.length, connections, async () => {
    const envId = envIds[next++]!;
    const res = await call(
      `${p.apiUrl}/api/services/${serviceId}/environments/${envId}/deployments`,
      token,
      'POST',
      {
        version: '1.0.0',
      },
    );
    if (res.status !== 202) throw new Error(`trigger: ${res.status} ${JSON.stringify(res.body)}`);
    ids.push(res.body.id as number);
  });
  if (load.errors > 0) throw new Error(`${load.errors} of ${envIds.length} triggers failed`);
  return ids;
}

/** The many-waiting figures (needs a worker). */
export async function measureWaiting(
  p: Platform & { rss: { begin(phase: string): void; all(): Record<string, Record<string, number>> } },
  tokens: { requester: string; approver: string },
  o: { many: number; connections: number; sample: number },
): Promise<void> {
  const few = 10;
  const { serviceId, prodIds } = await seed(p, o.many + few + 2 * o.sample);
  // With few waiting: `few` stay waiting while `sample` are approved one at a time.
  const fewIds = await trigger(
    p,
    tokens.requester,
    serviceId,
    prodIds.slice(0, few + o.sample),
    o.connections,
  );
  await allIn(p, fewIds, 'awaiting_approval', 120_000);
  const fewMs = await approvalLatencies(p, tokens.approver, fewIds.slice(0, o.sample));
  await approvalLatencies(p, tokens.approver, fewIds.slice(o.sample));
  // With many waiting.
  const began = Date.now();
  const manyIds = await trigger(p, tokens.requester, serviceId, prodIds.slice(few + o.sample), o.connections);
  await allIn(p, manyIds, 'awaiting_approval', 1_800_000);
  const setupS = (Date.now() - began) / 1000;
  p.rss.begin('waiting');
  await sleep(5000);
  const manyMs = await approvalLatencies(p, tokens.approver, manyIds.slice(0, o.sample));
  const workerMb = p.rss.all()['waiting']?.['worker'] ?? NaN;
  p.rss.begin('approving');
  let next = o.sample;
  const approveAll = Date.now();
  const approvals = await concurrentLoad(manyIds.length - o.sample, o.connections, async () => {
    const id = manyIds[next++]!;
    const res = await call(`${p.apiUrl}/api/deployments/${id}/approvals`, tokens.approver, 'POST', {
      decision: 'approve',
    });
    if (res.status !== 202) throw new Error(`approve ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  });
  if (approvals.errors > 0) throw new Error(`${approvals.errors} approvals failed`);
  await allIn(p, manyIds, 'succeeded', 1_800_000);
  const approveS = (Date.now() - approveAll) / 1000;
  figure(
    `approve → succeeded p50, ${manyIds.length} prod deployments waiting (÷ ${few} waiting), one worker`,
    'ms',
    pct(manyMs, 50),
    pct(fewMs, 50),
    { op: '<=', limit: 1.5 },
  );
  figure(`worker RSS with ${manyIds.length} deployments waiting`, 'MB', workerMb, null, {
    op: '<=',
    limit: 600,
    absolute: true,
  });
  details['waiting'] = {
    many: manyIds.length,
    setup_seconds: round(setupS),
    approve_all_seconds: round(approveS),
    few_ms: fewMs.map(round),
    many_ms: manyMs.map(round),
    all_succeeded: true,
  };
}
