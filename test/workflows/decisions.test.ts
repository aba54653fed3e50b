/**
 * Decisions sent at the same moment, against the real dev server: every decision answered 202 is
 * recorded (in `approvals`, in the audit log and in its own 202 body), every other one is answered
 * 409 and recorded nowhere, the end state follows the recorded decisions, and no workflow task
 * failed on the way (the server refuses a task whose update answer comes after the run's last
 * command: "invalid command sequence").
 */
import { Approval, AuditLog, Deployment } from '../../src/domain/entities';
import {
  admin,
  auth,
  createService,
  createTeam,
  deploySucceeded,
  readyEnvironment,
} from '../support/fixtures';
import { sdkLog, startStack, tokenFor, type TestStack } from '../support/stack';

const ROUNDS = Number(process.env['DECISION_ROUNDS'] ?? 50);
// Each pairing runs its rounds on this many prod environments side by side (one at a time each:
// one active deployment per environment), so 50 rounds fit the time of a CI run on two cores.
const LANES = 2;

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: true });
});
afterAll(async () => {
  await stack.close();
});

type Decision = 'approve' | 'reject';
interface Sent {
  approver: string;
  decision: Decision;
}
interface Answer extends Sent {
  status: number;
  body: { status?: string; approvals?: { approver: string; decision: string }[]; detail?: string };
}

const token = (sub: string): string => tokenFor(sub, ['PLATFORM_ADMIN']);
const END = ['succeeded', 'failed', 'rejected', 'expired', 'cancelled'];

/** Reads a deployment's row until `done` holds for it (polls the database directly: cheaper than the API). */
async function rowUntil(
  id: number,
  done: (d: Deployment) => boolean,
  timeoutMs = 30_000,
): Promise<Deployment> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = await stack.orm.em.fork().findOneOrFail(Deployment, id);
    if (done(d)) return d;
    if (Date.now() > deadline) throw new Error(`deployment ${id} still ${d.status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * One round: a prod deployment waiting for approval, the decisions sent in parallel, then the
 * invariants checked against PostgreSQL and Temporal. Returns the answers' status codes.
 */
async function round(
  serviceId: number,
  envId: number,
  version: string,
  sent: Sent[],
  required: number,
): Promise<number[]> {
  const trigger = await stack.http
    .post(`/api/services/${serviceId}/environments/${envId}/deployments`)
    .set(auth(admin))
    .send({ version });
  expect(trigger.status).toBe(202);
  const id = trigger.body.id as number;
  await rowUntil(id, (d) => d.status === 'awaiting_approval');

  const answers: Answer[] = await Promise.all(
    sent.map(async (s) => {
      const res = await stack.http
        .post(`/api/deployments/${id}/approvals`)
        .set(auth(token(s.approver)))
        .send({ decision: s.decision });
      return { ...s, status: res.status, body: res.body };
    }),
  );
  for (const a of answers) expect([202, 409]).toContain(a.status);

  const accepted = answers.filter((a) => a.status === 202);
  const approvals = await stack.orm.em
    .fork()
    .find(Approval, { deploymentId: id }, { orderBy: { id: 'asc' } });
  const audited = await stack.orm.em.fork().find(AuditLog, {
    targetType: 'deployment',
    targetId: String(id),
    action: { $in: ['deployment.approve', 'deployment.reject'] },
  });
  const recorded = approvals.map((a) => `${a.approver}:${a.decision}`).sort();
  // Exactly the 202 decisions are recorded, in both places; every 409 left no trace.
  expect(recorded).toEqual(accepted.map((a) => `${a.approver}:${a.decision}`).sort());
  expect(audited.map((e) => `${e.actor}:${e.action.slice('deployment.'.length)}`).sort()).toEqual(recorded);
  for (const a of accepted)
    expect(a.body.approvals).toContainEqual(
      expect.objectContaining({ approver: a.approver, decision: a.decision }),
    );
  for (const a of answers.filter((x) => x.status === 409)) expect(a.body.detail).toEqual(expect.any(String));

  // The end state follows what was recorded.
  const rejected = approvals.some((a) => a.decision === 'reject');
  const approvedBy = approvals.filter((a) => a.decision === 'approve').length;
  const expected = rejected ? 'rejected' : approvedBy >= required ? 'succeeded' : 'awaiting_approval';
  const settled = await rowUntil(id, (d) =>
    expected === 'awaiting_approval' ? d.status === 'awaiting_approval' : END.includes(d.status),
  );
  expect(settled.status).toBe(expected);
  if (expected === 'awaiting_approval') {
    // Not enough approvals yet: a last, distinct approver settles it.
    const last = await stack.http
      .post(`/api/deployments/${id}/approvals`)
      .set(auth(token('closer')))
      .send({ decision: 'approve' });
    expect(last.status).toBe(202);
    expect((await rowUntil(id, (d) => END.includes(d.status))).status).toBe('succeeded');
  }

  await expectClosedCleanly(trigger.body.job_id);
  return answers.map((a) => a.status);
}

/** Waits for the run to close, and checks it closed without a failed workflow task. */
async function expectClosedCleanly(jobId: string): Promise<void> {
  const handle = stack.temporal.workflow.getHandle(jobId);
  await handle.result().catch(() => undefined);
  const history = await handle.fetchHistory();
  expect(history.events?.filter((e) => e.workflowTaskFailedEventAttributes) ?? []).toEqual([]);
}

/** Sets how many approvals a prod deployment needs from now on. */
async function requireApprovals(required: number): Promise<void> {
  const put = await stack.http
    .put('/api/policies/prod_approvals')
    .set(auth(admin))
    .send({ kind: 'prod_approvals', enabled: true, config: { tier: 'prod', required, timeout: '1h' } });
  expect(put.status).toBe(200);
}

const SCENARIOS: { name: string; sent: Sent[] }[] = [
  {
    name: 'approve ∥ reject (different approvers)',
    sent: [
      { approver: 'ann', decision: 'approve' },
      { approver: 'rob', decision: 'reject' },
    ],
  },
  {
    name: 'approve ∥ approve (different approvers)',
    sent: [
      { approver: 'ann', decision: 'approve' },
      { approver: 'bea', decision: 'approve' },
    ],
  },
  {
    name: 'approve ∥ approve (the same approver)',
    sent: [
      { approver: 'ann', decision: 'approve' },
      { approver: 'ann', decision: 'approve' },
    ],
  },
  {
    name: 'approve ∥ reject (the same approver)',
    sent: [
      { approver: 'ann', decision: 'approve' },
      { approver: 'ann', decision: 'reject' },
    ],
  },
];

/** A service whose `1.0.0` has succeeded in dev and staging, with one prod environment per scenario. */
async function servicePastStaging(): Promise<{ serviceId: number; prodIds: number[] }> {
  const team = await createTeam(stack);
  const service = await createService(stack, team.name);
  const [dev, staging, ...prods] = await Promise.all([
    readyEnvironment(stack, service.id, 'dev'),
    readyEnvironment(stack, service.id, 'staging'),
    ...SCENARIOS.flatMap((_, i) =>
      Array.from({ length: LANES }, (__, lane) =>
        readyEnvironment(stack, service.id, 'prod', `prod-${i}-${lane}`),
      ),
    ),
  ]);
  await deploySucceeded(stack, service.id, dev!.id, '1.0.0');
  await deploySucceeded(stack, service.id, staging!.id, '1.0.0');
  return { serviceId: service.id, prodIds: prods.map((p) => p.id) };
}

describe.each([1, 2])('parallel decisions with prod_approvals.required = %i', (required) => {
  beforeAll(() => requireApprovals(required));

  it(`records or refuses every decision, ${ROUNDS} rounds of each pairing`, async () => {
    const { serviceId, prodIds } = await servicePastStaging();
    const tally = await Promise.all(
      SCENARIOS.map(async (scenario, i) => {
        const lanes = await Promise.all(
          Array.from({ length: LANES }, async (_, lane) => {
            const codes: number[] = [];
            for (let r = lane; r < ROUNDS; r += LANES)
              codes.push(
                ...(await round(serviceId, prodIds[i * LANES + lane]!, '1.0.0', scenario.sent, required)),
              );
            return codes;
          }),
        );
        const codes = lanes.flat();
        return {
          scenario: scenario.name,
          accepted: codes.filter((c) => c === 202).length,
          refused: codes.filter((c) => c === 409).length,
        };
      }),
    );
    // Both outcomes were exercised where the pairing allows both; the same approver never decides twice.
    for (const t of tally) expect(t.accepted + t.refused).toBe(2 * ROUNDS);
    expect(tally[2]).toEqual(expect.objectContaining({ accepted: ROUNDS, refused: ROUNDS }));
    expect(tally[3]).toEqual(expect.objectContaining({ accepted: ROUNDS, refused: ROUNDS }));
    if (required === 1) {
      expect(tally[0]).toEqual(expect.objectContaining({ accepted: ROUNDS, refused: ROUNDS }));
      expect(tally[1]).toEqual(expect.objectContaining({ accepted: ROUNDS, refused: ROUNDS }));
    } else {
      expect(tally[1]).toEqual(expect.objectContaining({ accepted: 2 * ROUNDS, refused: 0 }));
    }
    expect(
      sdkLog.filter((e) =>
        /command sequence|must be the last command|Failing workflow task/i.test(e.message),
      ),
    ).toEqual([]);
  }, 600_000);
});

describe('a decision racing a cancellation', () => {
  beforeAll(() => requireApprovals(1));

  it(`is recorded and 202, or refused and 409 in our words, never both (${Math.ceil(ROUNDS / 5)} rounds)`, async () => {
    const { serviceId, prodIds } = await servicePastStaging();
    const envId = prodIds[0]!;
    for (let r = 0; r < Math.ceil(ROUNDS / 5); r++) {
      const trigger = await stack.http
        .post(`/api/services/${serviceId}/environments/${envId}/deployments`)
        .set(auth(admin))
        .send({ version: '1.0.0', config: { simulate: { delay_ms: 300 } } });
      expect(trigger.status).toBe(202);
      const id = trigger.body.id as number;
      await rowUntil(id, (d) => d.status === 'awaiting_approval');
      const [approve, cancel] = await Promise.all([
        stack.http
          .post(`/api/deployments/${id}/approvals`)
          .set(auth(token('ann')))
          .send({ decision: 'approve' }),
        stack.http.post(`/api/deployments/${id}/cancel`).set(auth(admin)),
      ]);
      expect([202, 409]).toContain(approve.status);
      expect([202, 409]).toContain(cancel.status);
      const settled = await rowUntil(id, (d) => END.includes(d.status));
      const approvals = await stack.orm.em.fork().find(Approval, { deploymentId: id });
      const audited = await stack.orm.em
        .fork()
        .count(AuditLog, { targetId: String(id), action: 'deployment.approve' });
      if (approve.status === 202) {
        expect(approvals.map((a) => a.approver)).toEqual(['ann']);
        expect(audited).toBe(1);
      } else {
        expect(approvals).toEqual([]);
        expect(audited).toBe(0);
        // Our words, never the SDK's failure names.
        expect(approve.body.detail).not.toMatch(/Failure|Activity|Error/);
      }
      expect(['cancelled', 'succeeded']).toContain(settled.status);
      await expectClosedCleanly(trigger.body.job_id);
    }
  }, 600_000);
});

describe('a decision resent with its Idempotency-Key', () => {
  it('is answered as the first (202, one decision); another decision under it is 409', async () => {
    const { serviceId, prodIds } = await servicePastStaging();
    const trigger = await stack.http
      .post(`/api/services/${serviceId}/environments/${prodIds[0]}/deployments`)
      .set(auth(admin))
      .send({ version: '1.0.0' });
    const id = trigger.body.id as number;
    await rowUntil(id, (d) => d.status === 'awaiting_approval');
    const send = (decision: Decision) =>
      stack.http
        .post(`/api/deployments/${id}/approvals`)
        .set(auth(token('ann')))
        .set('Idempotency-Key', 'ann-approves-once')
        .send({ decision });
    const [first, second] = await Promise.all([send('approve'), send('approve')]);
    expect([first.status, second.status]).toEqual([202, 202]);
    const again = await send('approve');
    expect(again.status).toBe(202);
    expect(again.body.approvals).toEqual([expect.objectContaining({ approver: 'ann', decision: 'approve' })]);
    expect((await send('reject')).status).toBe(409);
    expect(await stack.orm.em.fork().count(Approval, { deploymentId: id })).toBe(1);
    expect(
      await stack.orm.em.fork().count(AuditLog, { targetId: String(id), action: 'deployment.approve' }),
    ).toBe(1);
    // Without the key, the same approver again is a new decision, refused.
    const bare = await stack.http
      .post(`/api/deployments/${id}/approvals`)
      .set(auth(token('ann')))
      .send({ decision: 'approve' });
    expect(bare.status).toBe(409);
  });
});
