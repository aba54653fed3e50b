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
import {
  ACTIVE_DEPLOYMENT_STATUSES,
  DEPLOYMENT_STATUSES,
  type DeploymentStatus,
} from '../src/domain/lifecycle';
import { eventually, sleep } from '../test/support/eventually';
import {
  createTeam,
  serviceWithEnvironments,
  triggerDeployment,
  waitForStatus,
  type ServiceFixture,
} from '../test/support/fixtures';
import { HttpClient } from '../test/support/http-client';
import { startReceiver, type Receiver } from '../test/support/receiver';
import { ledger } from '../test/support/ledger';
import type { Platform } from '../test/support/platform';
import { startScriptPlatform } from './lib/platform';
import { formatTable, machineInfo, say } from './lib/report';
import { envInt } from './lib/settings';

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
    steps.push({
      tier: 'prod',
      version: `${v}.0.0`,
      kind: reject ? 'reject' : 'approve',
      expect: reject ? 'rejected' : 'succeeded',
    });
  }
  if (steps.length < count) steps.push({ tier: 'dev', version: '90.0.0', kind: 'fail', expect: 'failed' });
  if (steps.length < count)
    steps.push({ tier: 'dev', version: '91.0.0', kind: 'cancel', expect: 'cancelled' });
  for (let n = 1; steps.length < count; n++)
    steps.push({ tier: 'dev', version: `92.0.${n}`, kind: 'plain', expect: 'succeeded' });
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
    /** The API as the platform admin; every other user's client shares its record of calls. */
    private readonly api: HttpClient,
  ) {}

  /** Polls the deployment through the API until its status is one of `wanted`. */
  private until(api: HttpClient, id: number, wanted: readonly DeploymentStatus[]): Promise<Deployment> {
    return waitForStatus(api, id, wanted, settings.stepTimeoutS * 1000, settings.pollMs);
  }

  /** Registers the service with its three environments; does not wait for them (main() waits for all at once). */
  setUpService(name: string, team: string): Promise<ServiceFixture> {
    return serviceWithEnvironments(this.api, { name, team, ready: false });
  }

  /** Runs one service's plan in order; stops it at the first unexpected outcome. */
  async runService(name: string, team: string, service: ServiceFixture): Promise<void> {
    const requester = this.api.as(this.p.token(`dev-${team}`, ['DEVELOPER'], [team]));
    const approver = this.api.as(this.p.token(`lead-${team}`, ['TEAM_ADMIN'], [team]));
    const url = (tier: 'dev' | 'staging' | 'prod'): string =>
      `/api/services/${service.service.id}/environments/${service.envs[tier].id}/deployments`;

    // Promotion order: a version that never ran in dev may not go to staging.
    const early = await requester.call('POST', url('staging'), { version: '1.0.0' });
    if (early.status === 400) seen.refusals.promotionOrder++;
    else seen.problems.push(`${name}: staging before dev answered ${early.status}, not 400`);

    let firstProd = true;
    for (const [i, step] of planFor(settings.deploymentsPerService).entries()) {
      const config =
        step.kind === 'fail'
          ? { simulate: { fail: true } }
          : step.kind === 'cancel'
            ? { simulate: { delay_ms: settings.cancelDelayMs } }
            : undefined;
      const body = { version: step.version, initiated_by: 'soak', ...(config ? { config } : {}) };
      const key = `${name}-${i}`;
      const created: Deployment = await triggerDeployment(
        requester,
        service.service.id,
        service.envs[step.tier].id,
        body,
        { 'Idempotency-Key': key },
      );
      seen.created.set(created.id, { service: name, step });
      if (i === 0) {
        // The same key again: the same deployment, nothing new started.
        const replay = await requester.call<Deployment>('POST', url(step.tier), body, {
          'Idempotency-Key': key,
        });
        if (replay.status === 200 && replay.body.id === created.id) seen.refusals.idempotentReplays++;
        else
          seen.problems.push(
            `${name}: Idempotency-Key replay answered ${replay.status} ${JSON.stringify(replay.body).slice(0, 200)}`,
          );
      }
      if (step.kind === 'approve' || step.kind === 'reject') {
        await this.until(requester, created.id, ['awaiting_approval']);
        if (firstProd) {
          firstProd = false;
          const own = await requester.call('POST', `/api/deployments/${created.id}/approvals`, {
            decision: 'approve',
          });
          if (own.status === 403) seen.refusals.selfApproval++;
          else
            seen.problems.push(
              `${name}: the requester approving their own deployment answered ${own.status}, not 403`,
            );
        }
        await approver.must('POST', `/api/deployments/${created.id}/approvals`, 202, {
          decision: step.kind,
          comment: 'soak',
        });
        seen.decisions++;
      }
      if (step.kind === 'cancel') {
        await this.until(requester, created.id, ['in_progress']);
        await requester.must('POST', `/api/deployments/${created.id}/cancel`, 202, { reason: 'soak' });
        seen.cancelsRequested.set(created.id, (seen.cancelsRequested.get(created.id) ?? 0) + 1);
      }
      const done = await this.until(
        requester,
        created.id,
        DEPLOYMENT_STATUSES.filter((s) => !ACTIVE_DEPLOYMENT_STATUSES.includes(s)),
      );
      if (done.status !== step.expect) {
        seen.problems.push(
          `${name}: deployment ${created.id} (${step.tier} ${step.version}, ${step.kind}) ended ${done.status}, expected ${step.expect}`,
        );
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

/**
 * Every event written during the soak reached the subscriber: events written = deliveries that
 * succeeded (one per event), the receiver got each one (verified), none lost; and the delivery lag.
 */
async function deliveryChecks(p: Platform, receiver: Receiver, subscriptionId: number): Promise<Check[]> {
  const counts = async () => {
    const { rows } = await p.sql.query<{ written: string; delivered: string }>(
      `select (select count(*) from event where id > (select min(event_id) - 1 from webhook_delivery where subscription_id = $1)) as written,
              (select count(distinct event_id) from webhook_delivery where subscription_id = $1 and status_code between 200 and 299) as delivered`,
      [subscriptionId],
    );
    return { written: Number(rows[0]!.written), delivered: Number(rows[0]!.delivered) };
  };
  const settled = await eventually(
    async () => {
      const c = await counts();
      return c.written > 0 && c.written === c.delivered ? c : undefined;
    },
    300_000,
    'every event delivered',
    1000,
  ).catch(() => counts());
  const got = new Set(receiver.received.filter((r) => r.verified).map((r) => r.headers['webhook-id']));
  const { rows: lag } = await p.sql.query<{ p50: number; p99: number }>(
    `select percentile_cont(0.5) within group (order by s) as p50, percentile_cont(0.99) within group (order by s) as p99
       from (select extract(epoch from d.at - e.at) as s from webhook_delivery d join event e on e.id = d.event_id
              where d.subscription_id = $1 and d.status_code between 200 and 299) x`,
    [subscriptionId],
  );
  return [
    {
      name: 'events written = deliveries succeeded, zero lost',
      ok: settled.written === settled.delivered && got.size === settled.written,
      detail: `${settled.written} events written, ${settled.delivered} delivered (2xx), ${got.size} distinct signed webhook-ids received, ${receiver.received.length - got.size} repeats`,
    },
    {
      name: 'delivery lag (event → delivered)',
      ok: true,
      detail: `p50 ${(Number(lag[0]!.p50) * 1000).toFixed(0)} ms, p99 ${(Number(lag[0]!.p99) * 1000).toFixed(0)} ms`,
    },
  ];
}

/** The end-of-run assertions, from the database (the durable record, test/support/ledger.ts) and Temporal. */
async function finalChecks(p: Platform, api: HttpClient, expected: Record<string, number>): Promise<Check[]> {
  const checks: Check[] = [];
  const book = await ledger(p.sql, undefined, { cancels: seen.cancelsRequested });
  const byStatus: Record<string, number> = {};
  for (const status of book.status.values()) byStatus[status] = (byStatus[status] ?? 0) + 1;

  const active = [...book.status]
    .filter(([, status]) => ACTIVE_DEPLOYMENT_STATUSES.includes(status))
    .map(([id]) => id);
  const unknown = [...book.status.keys()].filter((id) => !seen.created.has(id));
  const missing = [...seen.created.keys()].filter((id) => !book.status.has(id));
  checks.push({
    name: 'zero lost: every deployment created reached an end state',
    ok:
      active.length === 0 &&
      unknown.length === 0 &&
      missing.length === 0 &&
      book.status.size === seen.created.size,
    detail: `${seen.created.size} created (202), ${book.status.size} rows; by status ${JSON.stringify(byStatus)}${active.length ? `; still active: ${active.join(', ')}` : ''}${unknown.length ? `; rows nobody created: ${unknown.length}` : ''}${missing.length ? `; missing rows: ${missing.join(', ')}` : ''}`,
  });
  const mismatched = Object.keys({ ...expected, ...byStatus }).filter(
    (s) => (expected[s] ?? 0) !== (byStatus[s] ?? 0),
  );
  checks.push({
    name: 'every deployment ended as planned',
    ok: mismatched.length === 0 && seen.problems.length === 0,
    detail: `planned ${JSON.stringify(expected)}${seen.problems.length ? `; ${seen.problems.length} problem(s): ${seen.problems.slice(0, 5).join(' | ')}` : ''}`,
  });

  const failures = [...api.unanswered(), ...api.serverErrors()];
  checks.push({
    name: 'zero 5xx responses',
    ok: failures.length === 0,
    detail: `${[...api.statusCounts()].map(([s, n]) => `${s || 'network error'}: ${n}`).join(', ')}${
      failures.length
        ? `; first: ${failures
            .slice(0, 3)
            .map(
              (f) => `${f.what} → ${f.status || 'network error'}: ${JSON.stringify(f.body)?.slice(0, 300)}`,
            )
            .join(' | ')}`
        : ''
    }`,
  });

  checks.push({
    name: 'zero environment locks left',
    ok: book.locksLeft === 0,
    detail: `${book.locksLeft} deployment rows in ${ACTIVE_DEPLOYMENT_STATUSES.join('/')}`,
  });

  // Each status change once in the timeline and once in the audit log (`deployment.create` for the
  // first, `deployment.<status>` for each later one); decisions and cancel requests audited once each.
  const wrong = [
    ...book.repeatedTimeline.map((id) => `${id}: the timeline repeats a status`),
    ...book.mismatches,
  ];
  checks.push({
    name: 'audit entries match the status changes',
    ok: wrong.length === 0,
    detail: `${book.entries['timeline']} timeline entries, ${book.entries['audit']} status-change audit entries, ${seen.decisions} decisions, ${book.refusals.length} refused requests${wrong.length ? `; ${wrong.length} difference(s): ${wrong.slice(0, 5).join(' | ')}` : ''}`,
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
    const running = await p.temporal.workflow.count(
      `WorkflowType = 'deployVersion' AND ExecutionStatus = 'Running'`,
    );
    checks.push({
      name: 'no deployment workflow still running in Temporal',
      ok: running.count === 0,
      detail: `${running.count} running`,
    });
  } catch (err) {
    checks.push({
      name: 'no deployment workflow still running in Temporal',
      ok: false,
      detail: `count failed: ${String(err)}`,
    });
  }
  return checks;
}

async function main(): Promise<void> {
  const began = Date.now();
  const platform = await startScriptPlatform({
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
    const api = new HttpClient(platform.apiUrl, platform.token('soak-admin', ['PLATFORM_ADMIN']));
    const soak = new Soak(platform, api);
    // One subscription on every event, to a receiver on loopback that verifies each signature.
    const receiver = await startReceiver();
    receiver.answer = () => ({ status: 204 });
    const hook = await api.must('POST', '/api/webhooks', 201, { url: receiver.url, events: ['*'] });
    receiver.secret = hook.signing_secret;
    const teams = Array.from({ length: settings.teams }, (_, i) => `team-${i + 1}`);
    for (const team of teams) await createTeam(api, team);
    const names = Array.from(
      { length: settings.services },
      (_, i) => `svc-${String(i + 1).padStart(3, '0')}`,
    );
    const teamOf = (i: number): string => teams[i % teams.length]!;
    say(
      `registering ${settings.services} services with dev, staging and prod environments (${settings.teams} teams)`,
    );
    const services = await Promise.all(names.map((name, i) => soak.setUpService(name, teamOf(i))));
    await eventually(
      async () => {
        const { rows } = await platform.sql.query<{ status: string; n: string }>(
          'select status, count(*) as n from environment group by status',
        );
        if (rows.some((r) => r.status === 'failed'))
          throw new Error(`an environment failed to provision: ${JSON.stringify(rows)}`);
        return rows.length === 1 && rows[0]!.status === 'ready';
      },
      300_000,
      'every environment to be ready',
      500,
    );

    const plan = planFor(settings.deploymentsPerService);
    const expected: Record<string, number> = {};
    for (const step of plan) expected[step.expect] = (expected[step.expect] ?? 0) + settings.services;
    say(
      `soaking: ${plan.length * settings.services} deployments, ${settings.services} services in parallel (each in promotion order), SIMULATED_DELAY_MS=${settings.delayMs}`,
    );
    sampler.begin('soak');
    const soakStart = Date.now();
    const progress = setInterval(
      () =>
        say(
          `  ${seen.created.size} deployments created, ${seen.decisions} decisions, ${seen.problems.length} problems`,
        ),
      15_000,
    );
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

    const checks = [
      ...(await finalChecks(platform, api, expected)),
      ...(await deliveryChecks(platform, receiver, hook.id)),
    ];
    await receiver.close();
    const peaks = sampler.all();
    const rss = (target: string): string =>
      ['start', 'soak', 'end'].map((ph) => `${ph} ${peaks[ph]?.[target] ?? '—'}`).join(', ');
    process.stdout.write(
      `\n${formatTable([['check', 'result', 'detail'], ...checks.map((c) => [c.name, c.ok ? 'PASS' : 'FAIL', c.detail])], [0, 2])}\n`,
    );
    say(
      `${seen.created.size} deployments in ${soakSeconds.toFixed(1)} s (${(seen.created.size / soakSeconds).toFixed(1)}/s) through the API and one worker`,
    );
    say(`RSS MB (peak per phase): API ${rss('api')}; worker ${rss('worker')}`);
    const m = machineInfo();
    say(
      `machine: ${m.nproc} cores (${m.cpu}), ${m.memory_gb} GB, node ${m.node}, load average ${m.load_average.join(' ')}; ${Math.round((Date.now() - began) / 1000)} s in all`,
    );
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
