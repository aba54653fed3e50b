/**
 * The lifecycle module: the transition tables written out literally (so a change to the table or
 * the expectation shows up), the moves they refuse, and the one shape every move's audit entry has.
 */
import {
  ACTIVE_DEPLOYMENT_STATUSES,
  DEPLOYMENT_STATUSES,
  IllegalTransitionError,
  auditEntry,
  canMoveDeployment,
  decisionEntry,
  isTerminal,
  moveDeployment,
  moveEnvironment,
  noteDeployment,
  type DeploymentRecord,
  type DeploymentStatus,
  type EnvironmentRecord,
} from '../../src/domain/lifecycle';

const ALLOWED: [DeploymentStatus, DeploymentStatus[]][] = [
  ['pending', ['awaiting_approval', 'in_progress', 'failed', 'cancelled']],
  ['awaiting_approval', ['in_progress', 'rejected', 'expired', 'cancelled']],
  ['in_progress', ['verifying', 'succeeded', 'failed', 'cancelled']],
  ['verifying', ['succeeded', 'failed', 'cancelled']],
  ['succeeded', []],
  ['failed', []],
  ['rejected', []],
  ['expired', []],
  ['cancelled', []],
];

const record = (status: DeploymentStatus): DeploymentRecord => ({
  id: 42,
  jobId: 'deploy-payments-prod-42',
  team: 'payments',
  status,
  timeline: [{ status: 'pending', at: '2026-12-01T00:00:00.000Z', actor: 'alice' }],
  error: null,
  finishedAt: null,
});

describe('the deployment transition table', () => {
  it.each(ALLOWED)('%s may move to exactly %j', (from, to) => {
    expect(DEPLOYMENT_STATUSES.filter((s) => canMoveDeployment(from, s))).toEqual(to);
  });

  it('holds the lock in exactly the statuses that have a way out', () => {
    expect(ACTIVE_DEPLOYMENT_STATUSES).toEqual(['pending', 'awaiting_approval', 'in_progress', 'verifying']);
    expect(DEPLOYMENT_STATUSES.filter(isTerminal)).toEqual([
      'succeeded',
      'failed',
      'rejected',
      'expired',
      'cancelled',
    ]);
  });

  const FORBIDDEN = ALLOWED.flatMap(([from, to]) =>
    DEPLOYMENT_STATUSES.filter((s) => !to.includes(s)).map((s) => [from, s] as const),
  );
  it.each(FORBIDDEN)('refuses %s → %s and leaves the record as it was', (from, to) => {
    const d = record(from);
    const before = structuredClone(d);
    expect(() => moveDeployment(d, to, { actor: 'system:worker', correlationId: null })).toThrow(
      IllegalTransitionError,
    );
    expect(d).toEqual(before);
  });
});

describe('noteDeployment', () => {
  it('appends a timeline entry under the current status and answers its audit entry, keyed by the note', () => {
    const d = record('in_progress');
    const at = new Date('2026-12-01T10:00:00.000Z');
    const entry = noteDeployment(d, 'callback:cb-1', {
      actor: 'target:deploy-hook',
      correlationId: 'c-1',
      detail: "target 'deploy-hook': pods rolling",
      at,
    });
    expect(d.status).toBe('in_progress');
    expect(d.timeline.at(-1)).toEqual({
      status: 'in_progress',
      at: at.toISOString(),
      actor: 'target:deploy-hook',
      detail: "target 'deploy-hook': pods rolling",
    });
    expect(entry).toMatchObject({
      action: 'deployment.note',
      outcome: 'success',
      targetType: 'deployment',
      targetId: '42',
      team: 'payments',
      actor: 'target:deploy-hook',
      dedupeKey: 'deploy-payments-prod-42:note:callback:cb-1',
      details: { from: 'in_progress', to: 'in_progress', detail: "target 'deploy-hook': pods rolling" },
    });
  });

  it.each(['succeeded', 'failed', 'rejected', 'expired', 'cancelled'] as const)(
    'refuses to note anything on an ended deployment (%s), leaving it as it was',
    (status) => {
      const d = record(status);
      const before = structuredClone(d);
      expect(() => noteDeployment(d, 'x', { actor: 'a', correlationId: null, detail: 'late' })).toThrow(
        IllegalTransitionError,
      );
      expect(d).toEqual(before);
    },
  );
});

describe('moveDeployment', () => {
  it('sets the status, appends the timeline entry, keeps the error and finishes an end state', () => {
    const d = record('in_progress');
    const at = new Date('2026-12-01T10:00:00.000Z');
    moveDeployment(d, 'failed', {
      actor: 'system:worker',
      correlationId: 'c-1',
      detail: 'driver said no',
      error: 'driver said no',
      at,
    });
    expect(d).toMatchObject({ status: 'failed', error: 'driver said no', finishedAt: at });
    expect(d.timeline.at(-1)).toEqual({
      status: 'failed',
      at: at.toISOString(),
      actor: 'system:worker',
      detail: 'driver said no',
    });
  });

  it('does not finish a move to an active status', () => {
    const d = record('pending');
    moveDeployment(d, 'awaiting_approval', { actor: 'system:worker', correlationId: null });
    expect(d.finishedAt).toBeNull();
  });

  // Every end state, whoever makes the move (the run's worker, or the API for a run that never
  // started), leaves an audit entry of one shape: the same action, outcome rule, dedupe key and details.
  const END: [DeploymentStatus, DeploymentStatus, 'success' | 'failure'][] = [
    ['in_progress', 'succeeded', 'success'],
    ['in_progress', 'failed', 'failure'],
    ['awaiting_approval', 'rejected', 'success'],
    ['awaiting_approval', 'expired', 'success'],
    ['pending', 'cancelled', 'success'],
    ['in_progress', 'cancelled', 'success'],
    ['pending', 'failed', 'failure'],
  ];
  it.each(END)('%s → %s: one audit shape whoever moves it (outcome %s)', (from, to, outcome) => {
    const byWorker = moveDeployment(record(from), to, {
      actor: 'system:worker',
      correlationId: 'c-1',
      detail: 'why',
      context: { workflow_id: 'deploy-payments-prod-42', run_id: 'r', activity: 'transitionDeployment' },
    });
    const byApi = moveDeployment(record(from), to, {
      actor: 'alice',
      actorRoles: ['PLATFORM_ADMIN'],
      correlationId: 'c-2',
      detail: 'why',
    });
    for (const entry of [byWorker, byApi]) {
      expect(entry).toMatchObject({
        action: `deployment.${to}`,
        outcome,
        targetType: 'deployment',
        targetId: '42',
        team: 'payments',
        dedupeKey: `deploy-payments-prod-42:status:${to}`,
        details: expect.objectContaining({ from, to, job_id: 'deploy-payments-prod-42', detail: 'why' }),
      });
    }
    expect(Object.keys(byApi).sort()).toEqual(Object.keys(byWorker).sort());
    expect(byApi.actor).toBe('alice');
    expect(byApi.actorRoles).toEqual(['PLATFORM_ADMIN']);
  });
});

describe('moveEnvironment', () => {
  const env = (): EnvironmentRecord => ({
    id: 7,
    jobId: 'provision-payments-dev-7',
    status: 'provisioning',
    error: null,
  });

  it.each([
    ['ready', 'success'],
    ['failed', 'failure'],
  ] as const)('provisioning → %s is audited %s with the job dedupe key', (to, outcome) => {
    const e = env();
    const entry = moveEnvironment(e, 'payments', to, {
      actor: 'system:worker',
      correlationId: null,
      ...(to === 'failed' ? { error: 'boom' } : {}),
    });
    expect(e.status).toBe(to);
    expect(entry).toMatchObject({
      action: `environment.${to}`,
      outcome,
      targetType: 'environment',
      targetId: '7',
      team: 'payments',
      dedupeKey: `provision-payments-dev-7:status:${to}`,
    });
  });

  it.each(['ready', 'failed'] as const)('refuses any move out of %s', (from) => {
    expect(() =>
      moveEnvironment({ ...env(), status: from }, null, from === 'ready' ? 'failed' : 'ready', {
        actor: 'x',
        correlationId: null,
      }),
    ).toThrow(IllegalTransitionError);
  });
});

describe('auditEntry and decisionEntry', () => {
  it('builds request entries by the same rule: ids as text, defaults for what is not said', () => {
    const at = new Date('2026-12-01T00:00:00.000Z');
    expect(
      auditEntry(
        { actor: 'alice', correlationId: 'c', at },
        { action: 'team.create', outcome: 'success', targetType: 'team', targetId: 3 },
      ),
    ).toEqual({
      at,
      actor: 'alice',
      actorRoles: [],
      action: 'team.create',
      outcome: 'success',
      targetType: 'team',
      targetId: '3',
      team: null,
      correlationId: 'c',
      details: {},
      dedupeKey: null,
    });
  });

  it('keys a decision by job and approver, so a repeated step writes it once', () => {
    const entry = decisionEntry(
      { id: 42, jobId: 'deploy-payments-prod-42', team: 'payments' },
      {
        approver: 'bob',
        roles: ['TEAM_ADMIN'],
        decision: 'reject',
        comment: 'not today',
        correlationId: 'c',
      },
    );
    expect(entry).toMatchObject({
      actor: 'bob',
      action: 'deployment.reject',
      targetId: '42',
      dedupeKey: 'deploy-payments-prod-42:decision:bob',
      details: { comment: 'not today' },
    });
  });
});
