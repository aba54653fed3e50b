import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ACTIVE_DEPLOYMENT_STATUSES, isTerminal, type DeploymentStatus } from '../domain/lifecycle';
import {
  FAILURE_TYPES,
  SEARCH_ATTRIBUTES,
  decideUpdate,
  getStatusQuery,
  type DeployInput,
  type DeployResult,
  type DecisionInput,
  type DeploymentState,
} from './contract';
import { acceptReports, noticeCancel } from './delivery';
import { DB_STEP } from './presets';
import { rollOut, type Run } from './deploy-rollout';

// Read through a function: TypeScript would otherwise keep the status narrowed across awaits.
const currentStatus = (s: DeploymentState): DeploymentStatus => s.status;

// Runs started before `LOCAL_DB_STEPS` recorded the database steps as (remote) activities; their
// replays must schedule the same commands.
const remoteDb = proxyActivities<Activities>(DB_STEP);

// As local activities the steps run inside the workflow task, on the worker that holds the run: no
// task queue dispatch and no extra workflow task per step, so a dev deployment needs three server
// round trips instead of seven (see BENCHMARKS.md). They are idempotent, so the rare re-run of a
// local activity whose workflow task failed is harmless.
const localDb = proxyLocalActivities<Activities>(DB_STEP);

/** Patch id: the database steps of deployVersion run as local activities. */
export const LOCAL_DB_STEPS = 'deploy-db-steps-local';

/**
 * Patch id: decisions are applied one at a time, each re-checked against the status the one before
 * left, and a decision the database refuses fails its update (409) instead of answering with the
 * state it found. Runs started before it applied concurrent decisions side by side.
 */
export const SERIAL_DECISIONS = 'deploy-decisions-serial';

const refused = (message: string): ApplicationFailure =>
  ApplicationFailure.nonRetryable(message, FAILURE_TYPES.decisionRefused);

/** The refusal inside a failed `recordDecision`, if that is why it failed. */
function refusalOf(err: unknown): ApplicationFailure | null {
  const cause = err instanceof ActivityFailure ? err.cause : null;
  return cause instanceof ApplicationFailure && cause.type === FAILURE_TYPES.decisionRefused ? cause : null;
}

/**
 * Accepts decisions as updates. Decisions that arrive together run one after the other: each waits
 * for the one before to be applied, then checks the status again, so a reject racing the approval
 * that moved the deployment on is refused rather than answered with the state it found (and lost).
 */
function acceptDecisions(run: Run): void {
  const { input, state, deciding } = run;
  run.serial = patched(SERIAL_DECISIONS);
  let previous: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(fn: () => Promise<T>): Promise<T> => {
    if (!run.serial) return fn();
    const turn = previous.then(fn, fn);
    previous = turn.catch(() => undefined);
    return turn;
  };
  const record = (decision: DecisionInput) => () => run.db.recordDecision(input.deploymentId, decision);
  const apply = async (decision: DecisionInput): Promise<DeploymentState> => {
    // The row may already say awaiting_approval while this run still waits for beginDeployment's
    // result: let that land first (or the run's end, when that step failed).
    try {
      await condition(() => state.status !== 'pending' || run.closed);
    } catch (err) {
      // A cancelled run takes no more decisions: refused in our words, not the SDK's.
      if (run.serial && isCancellation(err)) throw refused('the deployment is being cancelled');
      throw err;
    }
    if (state.status !== 'awaiting_approval' || (run.serial && run.closed))
      throw refused(`deployment is ${state.status}, not awaiting approval`);
    try {
      // Once its step has started, a decision settles as the database has it, even if the run is
      // cancelled meanwhile (a cancelled local activity may still commit): recorded and 202, or
      // refused and 409, never both. The cleanup's move to `cancelled` comes after it.
      run.apply(await (run.serial ? CancellationScope.nonCancellable(record(decision)) : record(decision)()));
    } catch (err) {
      const refusal = refusalOf(err);
      throw refusal ? refused(refusal.message) : err;
    }
    return { ...state };
  };
  setHandler(
    decideUpdate,
    async (decision) => {
      deciding.add(decision.approver);
      try {
        return await inTurn(() => apply(decision));
      } finally {
        deciding.delete(decision.approver);
      }
    },
    {
      // The API checked eligibility already; this re-check is authoritative and rejects the update
      // before anything is written to history.
      validator: (decision) => {
        if (state.status !== 'awaiting_approval' && state.status !== 'pending')
          throw refused(`deployment is ${state.status}, not awaiting approval`);
        if (run.serial && run.closed) throw refused('the deployment no longer takes decisions');
        if (decision.approver === input.requestedBy)
          throw refused('the requester may not decide on their own deployment');
        if (state.approvers.includes(decision.approver) || deciding.has(decision.approver))
          throw refused(`${decision.approver} has already decided`);
      },
    },
  );
}

/** At most this many reminders per deployment (about 5 history events each; a run's history is bounded). */
export const MAX_REMINDERS = 1000;

/** Patch id: while a deployment waits for approval, reminders go out every `remind_every`. */
export const APPROVAL_REMINDERS = 'deploy-approval-reminders';

/** Waits until decided or `timeoutSeconds` passed, reminding every `remindEverySeconds` (0: never); true when decided. */
async function waitForDecision(
  run: Run,
  timeoutSeconds: number,
  remindEverySeconds: number,
): Promise<boolean> {
  const decided = () => run.state.status !== 'awaiting_approval';
  if (remindEverySeconds <= 0 || !patched(APPROVAL_REMINDERS))
    return condition(decided, timeoutSeconds * 1000);
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (let n = 1; ; n++) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    // Past MAX_REMINDERS the run only waits: each reminder grows its history by a few events.
    if (n > MAX_REMINDERS) return condition(decided, left);
    if (await condition(decided, Math.min(left, remindEverySeconds * 1000))) return true;
    if (Date.now() >= deadline) return false;
    await run.db.remindApproval(run.input.deploymentId, n);
  }
}

/** Waits for the decisions, or for the timeout (then `expired`); fails the run unless approved. */
async function awaitApproval(run: Run, timeoutSeconds: number, remindEverySeconds = 0): Promise<void> {
  const { state, input } = run;
  const decided = await waitForDecision(run, timeoutSeconds, remindEverySeconds);
  if (!decided) {
    // A decision being recorded right now wins over the timer.
    await condition(() => run.deciding.size === 0);
    if (state.status === 'awaiting_approval') {
      // From here no new decision is accepted: one arriving now would race the move to expired.
      run.closed = true;
      const detail = `no decision within ${timeoutSeconds}s`;
      run.apply({
        status: await run.db.transitionDeployment(
          input.deploymentId,
          ['awaiting_approval'],
          'expired',
          detail,
        ),
      });
    }
  }
  const settled = currentStatus(state);
  if (settled === 'rejected')
    throw ApplicationFailure.nonRetryable('deployment was rejected', FAILURE_TYPES.rejected);
  if (settled === 'expired') throw ApplicationFailure.nonRetryable('approval expired', FAILURE_TYPES.expired);
}

/**
 * One deployment: checks order and readiness, waits for approvals where the tier needs them, rolls
 * the version out through the driver and records the outcome. Business outcomes other than success
 * fail the run with a non-retryable ApplicationFailure whose type names the outcome; cancellation
 * ends the deployment `cancelled`.
 */
export async function deployVersion(input: DeployInput): Promise<DeployResult> {
  const state: DeploymentState = { status: 'pending', approvalsRequired: 0, approvers: [] };
  const run: Run = {
    input,
    db: patched(LOCAL_DB_STEPS) ? localDb : remoteDb,
    state,
    deciding: new Set<string>(),
    serial: false,
    closed: false,
    reports: acceptReports(),
    plan: null,
    dispatched: { value: false },
    apply(next) {
      // An end state is never left: a late answer (a decision recorded just before the timer's move
      // to expired, say) must not set IdpStatus back on a run that has ended.
      if (run.serial && isTerminal(state.status)) return;
      if ('approvers' in next) {
        state.approvers = next.approvers;
        state.approvalsRequired = next.approvalsRequired;
      }
      if (next.status !== state.status) {
        state.status = next.status;
        upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: next.status }]);
      }
    },
  };
  setHandler(getStatusQuery, () => state);
  acceptDecisions(run);

  try {
    const begun = await run.db.beginDeployment(input.deploymentId);
    run.apply(begun);
    if (!begun.proceed) {
      throw ApplicationFailure.nonRetryable(
        begun.error ?? `deployment is ${begun.status}`,
        begun.failureType ?? 'DeploymentNotStarted',
      );
    }
    if (state.status === 'awaiting_approval')
      await awaitApproval(run, begun.approvalTimeoutSeconds, begun.remindEverySeconds ?? 0);
    await rollOut(run);
    // Runs started before SERIAL_DECISIONS waited here only, on success; their replays must too.
    if (!run.serial) await condition(allHandlersFinished);
    return { status: state.status };
  } catch (err) {
    if (isCancellation(err)) {
      // Cleanup must run although the run is being cancelled: it records the end state and so
      // releases the environment lock.
      await CancellationScope.nonCancellable(async () => {
        await noticeCancel({ type: 'deployment', id: input.deploymentId }, run.plan, run.dispatched.value);
        run.apply({
          status: await run.db.transitionDeployment(
            input.deploymentId,
            [...ACTIVE_DEPLOYMENT_STATUSES],
            'cancelled',
            'cancelled on request',
          ),
        });
      });
      log.info('deployment cancelled', { deploymentId: input.deploymentId });
    }
    throw err;
  } finally {
    // No update may still be running when the run completes or fails: its answer would come after
    // the run's last command (the server refuses that workflow task), and a decision the caller was
    // told about must have been settled. Waited for also on cancellation, hence non-cancellable;
    // decisions still queued are refused (closed), so the wait ends.
    if (run.serial) {
      run.closed = true;
      await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
    }
  }
}
