/**
 * `npm run soak`: 1,000 deployments (by default) across 50 services and every tier, through the real
 * API and worker (started by scripts/lib/platform.ts, as the benchmark does), each service walking
 * its versions dev → staging → prod with prod approvals sent by a team admin who is not the requester,
 * plus a rejection, a failed rollout and a cancellation per service, and the refusals the guardrails
 * owe (promotion order, self-approval). At the end it asserts and prints: nothing lost (every
 * deployment created reached an end state, counted by status), no 5xx, no environment lock left, and
 * one audit entry per status change of every deployment. Exits 1 on any failure.
 *
 * Sizes and ports: SOAK_* variables below. `--no-build` / `--tsx` as for the benchmark.
 */
import { ACTIVE_DEPLOYMENT_STATUSES, DEPLOYMENT_STATUSES, type DeploymentStatus, type TimelineEntry } from '../src/domain/types';
import { ApiClient, envInt, formatTable, machineInfo, say, sleep, startPlatform, waitFor, type Platform } from './lib/platform';

const settings = {
  services: envInt('SOAK_SERVICES', 50),
  teams: envInt('SOAK_TEAMS', 10),
  deploymentsPerService: envInt('SOAK_DEPLOYMENTS_PER_SERVICE', 20),
  /** The simulated driver's rollout time (provisioning too). */
  delayMs: envInt('SOAK_SIMULATED_DELAY_MS', 50),
  /** How long the cancelled rollouts would take: long enough to be cancelled while in progress. */
  cancelDelayMs: envInt('SOAK_CANCEL_DELAY_MS', 5000),
  pollMs: envInt('SOAK_POLL_MS', 250),
  /** Longest one deployment may take to reach the status awaited. */
  stepTimeoutS: envInt('SOAK_STEP_TIMEOUT_S', 180),
  pgPort: envInt('SOAK_PG_PORT', 54341),
  temporalPort: envInt('SOAK_TEMPORAL_PORT', 7410),
  apiPort: envInt('SOAK_API_PORT', 4110),
};

/** One deployment of a service's plan and how it must end. */
interface Step {
  tier: 'dev' | 'staging' | 'prod';
  version: string;
  kind: 'plain' | 'approve' | 'reject' | 'fail' | 'cancel';
  expect: DeploymentStatus;
}

/**
 * A service's deployments in order: versions up the tiers (prod approved, the third version's prod
 * rejected), then a dev rollout that fails, one that is cancelled, and plain dev deployments to fill.
 */
function planFor(count: number): Step[] {
  const steps: Step[] = [];
  const extras = Math.min(2, count);
  for (let v = 1; steps.length + 3 <= count - extras; v++) {
    steps.push({ tier: 'dev', version: `${v}.0.0`, kind: 'plain', expect: 'succeeded' });
    steps.push({ tier: 'staging', version: `${v}.0.0`, kind: 'plain', expect: 'succeeded' });
    const reject = v === 3;
    steps.push({ tier: 'prod', version: `${v}.0.0`, kind: reject ? 'reject' : 'approve', expect: reject ? 'rejected' : 'succeeded' });
  }
  if (steps.length < count) steps.push({ tier: 'dev', version: '90.0.0', kind: 'fail', expect: 'failed' });
  if (steps.length < count) steps.push({ tier: 'dev', version: '91.0.0', kind: 'cancel', expect: 'cancelled' });
  for (let n = 1; steps.length < count; n++) steps.push({ tier: 'dev', version: `92.0.${n}`, kind: 'plain', expect: 'succeeded' });
  return steps;
}

interface Deployment {
  id: number;
  status: DeploymentStatus;
  job_id: string;
}

/** What the run saw, for the final checks. */
const seen = {
  created: new Map<number, { service: string; step: Step }>(),
  cancelsRequested: new Map<number, number>(),
  decisions: 0,
  refusals: { promotionOrder: 0, selfApproval: 0, idempotentReplays: 0 },
  problems: [] as string[],
};

class Soak {
  constructor(
    private readonly p: Platform,
    private readonly api: ApiClient,
    private readonly admin: string,
  ) {}

  /** Polls the deployment through the API until its status is one of `wanted`. */
  private async until(id: number, token: string, wanted: DeploymentStatus[]): Promise<Deployment> {
    const deadline = Date.now() + settings.stepTimeoutS * 1000;
    for (;;) {
      const res = await this.api.call<Deployment>('GET', `/api/deployments/${id}`, token);
      if (res.status === 200 && wanted.includes(res.body.status)) return res.body;
      if (Date.now() > deadline) throw new Error(`deployment ${id} did not reach ${wanted.join('|')} within ${settings.stepTimeoutS}s (last: ${res.status} ${JSON.stringify(res.body).slice(0, 200)})`);
      await sleep(settings.pollMs);
    }
  }

  /** Registers the service with its three environments; resolves when they are ready. */
  async setUpService(name: string, team: string): Promise<{ id: number; envs: Record<string, number> }> {
    const service = await this.api.expect<{ id: number }>([201], 'POST', '/api/services', this.admin, {
      name,
      team,
      tags: { owner: team, data_sensitivity: 'internal' },
    });
    const envs: Record<string, number> = {};
    for (const tier of ['dev', 'staging', 'prod']) {
      const env = await this.api.expect<{ id: number }>([202], 'POST', `/api/services/${service.id}/environments`, this.admin, { name: tier, tier });
      envs[tier] = env.id;
    }
    return { id: service.id, envs };
  }

  /** Runs one service's plan in order; stops it at the first unexpected outcome. */
  async runService(name: string, team: string, service: { id: number; envs: Record<string, number> }): Promise<void> {
    const requester = this.p.token(`dev-${team}`, ['DEVELOPER'], [team]);
    const approver = this.p.token(`lead-${team}`, ['TEAM_ADMIN'], [team]);
    const url = (tier: string): string => `/api/services/${service.id}/environments/${service.envs[tier]}/deployments`;

    // Promotion order: a version that never ran in dev may not go to staging.
    const early = await this.api.call('POST', url('staging'), requester, { version: '1.0.0' });
    if (early.status === 400) seen.refusals.promotionOrder++;
    else seen.problems.push(`${name}: staging before dev answered ${early.status}, not 400`);

    let firstProd = true;
    for (const [i, step] of planFor(settings.deploymentsPerService).entries()) {
      const config =
        step.kind === 'fail' ? { simulate: { fail: true } } : step.kind === 'cancel' ? { simulate: { delay_ms: settings.cancelDelayMs } } : undefined;
      const body = { version: step.version, initiated_by: 'soak', ...(config ? { config } : {}) };
      const key = `${name}-${i}`;
      const created = await this.api.expect<Deployment>([202], 'POST', url(step.tier), requester, body, { 'Idempotency-Key': key });
      seen.created.set(created.id, { service: name, step });
      if (i === 0) {
        // The same key again: the same deployment, nothing new started.
        const replay = await this.api.call<Deployment>('POST', url(step.tier), requester, body, { 'Idempotency-Key': key });
        if (replay.status === 200 && replay.body.id === created.id) seen.refusals.idempotentReplays++;
        else seen.problems.push(`${name}: Idempotency-Key replay answered ${replay.status} ${JSON.stringify(replay.body).slice(0, 200)}`);
      }
      if (step.kind === 'approve' || step.kind === 'reject') {
        await this.until(created.id, requester, ['awaiting_approval']);
        if (firstProd) {
          firstProd = false;
          const own = await this.api.call('POST', `/api/deployments/${created.id}/approvals`, requester, { decision: 'approve' });
          if (own.status === 403) seen.refusals.selfApproval++;
          else seen.problems.push(`${name}: the requester approving their own deployment answered ${own.status}, not 403`);
        }
        await this.api.expect([202], 'POST', `/api/deployments/${created.id}/approvals`, approver, { decision: step.kind, comment: 'soak' });
        seen.decisions++;
      }
      if (step.kind === 'cancel') {
        await this.until(created.id, requester, ['in_progress']);
        await this.api.expect([202], 'POST', `/api/deployments/${created.id}/cancel`, requester, { reason: 'soak' });
        seen.cancelsRequested.set(created.id, (seen.cancelsRequested.get(created.id) ?? 0) + 1);
      }
      const done = await this.until(created.id, requester, DEPLOYMENT_STATUSES.filter((s) => !ACTIVE_DEPLOYMENT_STATUSES.includes(s)));
      if (done.status !== step.expect) {
        seen.problems.push(`${name}: deployment ${created.id} (${step.tier} ${step.version}, ${step.kind}) ended ${done.status}, expected ${step.expect}`);
        return;
      }
    }
  }
}

/** One check of the final report. */
interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** The end-of-run assertions, from the database (the durable record) and Temporal. */
async function finalChecks(p: Platform, api: ApiClient, expected: Record<string, number>): Promise<Check[]> {
  const checks: Check[] = [];
  const { rows: deployments } = await p.sql.query<{ id: number; status: DeploymentStatus; timeline: TimelineEntry[] }>('select id, status, timeline from deployment order by id');
  const byStatus: Record<string, number> = {};
  for (const d of deployments) byStatus[d.status] = (byStatus[d.status] ?? 0) + 1;

  const active = deployments.filter((d) => ACTIVE_DEPLOYMENT_STATUSES.includes(d.status));
  const unknown = deployments.filter((d) => !seen.created.has(d.id));
  const missing = [...seen.created.keys()].filter((id) => !deployments.some((d) => d.id === id));
  checks.push({
    name: 'zero lost: every deployment created reached an end state',
    ok: active.length === 0 && unknown.length === 0 && missing.length === 0 && deployments.length === seen.created.size,
    detail: `${seen.created.size} created (202), ${deployments.length} rows; by status ${JSON.stringify(byStatus)}${active.length ? `; still active: ${active.map((d) => d.id).join(', ')}` : ''}${unknown.length ? `; rows nobody created: ${unknown.length}` : ''}${missing.length ? `; missing rows: ${missing.join(', ')}` : ''}`,
  });
  const mismatched = Object.keys({ ...expected, ...byStatus }).filter((s) => (expected[s] ?? 0) !== (byStatus[s] ?? 0));
  checks.push({ name: 'every deployment ended as planned', ok: mismatched.length === 0 && seen.problems.length === 0, detail: `planned ${JSON.stringify(expected)}${seen.problems.length ? `; ${seen.problems.length} problem(s): ${seen.problems.slice(0, 5).join(' | ')}` : ''}` });

  checks.push({
    name: 'zero 5xx responses',
    ok: api.serverErrors.length === 0,
    detail: `${[...api.statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s || 'network error'}: ${n}`).join(', ')}${api.serverErrors.length ? `; first: ${api.serverErrors.slice(0, 3).join(' | ')}` : ''}`,
  });

  const { rows: locks } = await p.sql.query<{ n: string }>(`select count(*) as n from deployment where status = any($1)`, [ACTIVE_DEPLOYMENT_STATUSES]);
  checks.push({ name: 'zero environment locks left', ok: Number(locks[0]!.n) === 0, detail: `${locks[0]!.n} deployment rows in ${ACTIVE_DEPLOYMENT_STATUSES.join('/')}` });

  // One audit entry per status change: `deployment.create` for the first (pending), then
  // `deployment.<status>` for each later timeline entry; no more, no fewer, no duplicates.
  const statusActions = new Set(['deployment.create', ...DEPLOYMENT_STATUSES.map((s) => `deployment.${s}`)]);
  const { rows: audits } = await p.sql.query<{ target_id: string; action: string; outcome: string }>(
    `select target_id, action, outcome from audit_log where target_type = 'deployment' and outcome <> 'denied'`,
  );
  const { rows: approvals } = await p.sql.query<{ deployment_id: number; n: string }>('select deployment_id, count(*) as n from approval group by deployment_id');
  const approvalCount = new Map(approvals.map((a) => [a.deployment_id, Number(a.n)]));
  const auditsOf = new Map<number, string[]>();
  for (const a of audits) auditsOf.set(Number(a.target_id), [...(auditsOf.get(Number(a.target_id)) ?? []), a.action]);
  const wrong: string[] = [];
  for (const d of deployments) {
    const actions = auditsOf.get(d.id) ?? [];
    const want = d.timeline.map((t, i) => (i === 0 && t.status === 'pending' ? 'deployment.create' : `deployment.${t.status}`)).sort();
    const got = actions.filter((a) => statusActions.has(a)).sort();
    const decisions = actions.filter((a) => a === 'deployment.approve' || a === 'deployment.reject').length;
    const cancels = actions.filter((a) => a === 'deployment.cancel').length;
    if (JSON.stringify(want) !== JSON.stringify(got)) wrong.push(`${d.id}: timeline ${want.join(',')} vs audit ${got.join(',')}`);
    else if (decisions !== (approvalCount.get(d.id) ?? 0)) wrong.push(`${d.id}: ${decisions} decision entries for ${approvalCount.get(d.id) ?? 0} approvals`);
    else if (cancels !== (seen.cancelsRequested.get(d.id) ?? 0)) wrong.push(`${d.id}: ${cancels} cancel entries for ${seen.cancelsRequested.get(d.id) ?? 0} requests`);
  }
  const transitions = deployments.reduce((n, d) => n + d.timeline.length, 0);
  checks.push({
    name: 'audit entries match the status changes',
    ok: wrong.length === 0,
    detail: `${transitions} timeline entries, ${audits.filter((a) => statusActions.has(a.action)).length} status-change audit entries, ${seen.decisions} decisions${wrong.length ? `; ${wrong.length} deployment(s) differ: ${wrong.slice(0, 5).join(' | ')}` : ''}`,
  });

  checks.push({
    name: 'guardrails refused what they must',
    ok:
      seen.refusals.promotionOrder === settings.services &&
      seen.refusals.selfApproval === settings.services &&
      seen.refusals.idempotentReplays === settings.services,
    detail: `promotion order 400 ×${seen.refusals.promotionOrder}, self-approval 403 ×${seen.refusals.selfApproval}, Idempotency-Key replay 200 ×${seen.refusals.idempotentReplays} (of ${settings.services} each)`,
  });

  try {
    const running = await p.temporal.workflow.count(`WorkflowType = 'deployVersion' AND ExecutionStatus = 'Running'`);
    checks.push({ name: 'no deployment workflow still running in Temporal', ok: running.count === 0, detail: `${running.count} running` });
  } catch (err) {
    checks.push({ name: 'no deployment workflow still running in Temporal', ok: false, detail: `count failed: ${String(err)}` });
  }
  return checks;
}

async function main(): Promise<void> {
  const began = Date.now();
  const platform = await startPlatform({
    name: 'soak',
    pgPort: settings.pgPort,
    temporalPort: settings.temporalPort,
    apiPort: settings.apiPort,
    taskQueue: 'idp-soak',
    childEnv: { SIMULATED_DELAY_MS: String(settings.delayMs) },
  });
  const sampler = platform.rss;
  let ok = false;
  try {
    sampler.begin('start');
    const api = new ApiClient(platform.apiUrl);
    const admin = platform.token('soak-admin', ['PLATFORM_ADMIN']);
    const soak = new Soak(platform, api, admin);
    const teams = Array.from({ length: settings.teams }, (_, i) => `team-${i + 1}`);
    for (const team of teams) await api.expect([201], 'POST', '/api/teams', admin, { name: team });
    const names = Array.from({ length: settings.services }, (_, i) => `svc-${String(i + 1).padStart(3, '0')}`);
    const teamOf = (i: number): string => teams[i % teams.length]!;
    say(`registering ${settings.services} services with dev, staging and prod environments (${settings.teams} teams)`);
    const services = await Promise.all(names.map((name, i) => soak.setUpService(name, teamOf(i))));
    await waitFor('every environment to be ready', async () => {
      const { rows } = await platform.sql.query<{ status: string; n: string }>('select status, count(*) as n from environment group by status');
      if (rows.some((r) => r.status === 'failed')) throw new Error(`an environment failed to provision: ${JSON.stringify(rows)}`);
      return rows.length === 1 && rows[0]!.status === 'ready';
    }, 300_000, 500);

    const plan = planFor(settings.deploymentsPerService);
    const expected: Record<string, number> = {};
    for (const step of plan) expected[step.expect] = (expected[step.expect] ?? 0) + settings.services;
    say(`soaking: ${plan.length * settings.services} deployments, ${settings.services} services in parallel (each in promotion order), SIMULATED_DELAY_MS=${settings.delayMs}`);
    sampler.begin('soak');
    const soakStart = Date.now();
    const progress = setInterval(() => say(`  ${seen.created.size} deployments created, ${seen.decisions} decisions, ${seen.problems.length} problems`), 15_000);
    await Promise.all(
      names.map((name, i) =>
        soak.runService(name, teamOf(i), services[i]!).catch((err: unknown) => {
          seen.problems.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
        }),
      ),
    );
    clearInterval(progress);
    const soakSeconds = (Date.now() - soakStart) / 1000;
    sampler.begin('end');
    await sleep(1000);

    const checks = await finalChecks(platform, api, expected);
    const peaks = sampler.all();
    const rss = (target: string): string => ['start', 'soak', 'end'].map((ph) => `${ph} ${peaks[ph]?.[target] ?? '—'}`).join(', ');
    process.stdout.write(`\n${formatTable([['check', 'result', 'detail'], ...checks.map((c) => [c.name, c.ok ? 'PASS' : 'FAIL', c.detail])], [0, 2])}\n`);
    say(`${seen.created.size} deployments in ${soakSeconds.toFixed(1)} s (${(seen.created.size / soakSeconds).toFixed(1)}/s) through the API and one worker`);
    say(`RSS MB (peak per phase): API ${rss('api')}; worker ${rss('worker')}`);
    const m = machineInfo();
    say(`machine: ${m.nproc} cores (${m.cpu}), ${m.memory_gb} GB, node ${m.node}, load average ${m.load_average.join(' ')}; ${Math.round((Date.now() - began) / 1000)} s in all`);
    ok = checks.every((c) => c.ok);
    say(ok ? 'soak passed' : 'soak FAILED');
  } catch (err) {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  } finally {
    await platform.close();
  }
  process.exit(ok ? 0 : 1);
}

void main();
