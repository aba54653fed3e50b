/**
 * A deployment's rollout: the re-check of deploy freezes right before it, the hand-over to the
 * target, the verification after it, and the automatic rollback when it failed. (Its decisions and
 * its start and end: deploy.workflow.ts.)
 */
import {
  ApplicationFailure,
  ParentClosePolicy,
  isCancellation,
  patched,
  proxyActivities,
  type proxyLocalActivities,
  sleep,
  upsertMemo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DeploymentStatus } from '../domain/lifecycle';
import {
  FAILURE_TYPES,
  type DeployInput,
  type DeploymentState,
  type DeliveryPlan,
  type JobRef,
  failureMessage,
} from './contract';
import { DELIVERY_TARGETS, deliverToTarget, verifyRollout, type Reports } from './delivery';
import { DRIVER_STEP } from './presets';
import { startDeploymentChild } from './release.workflow';

/** Patch id: a deploy freeze is checked again right before the rollout, and waited out. */
export const FREEZE_RECHECK = 'deploy-freeze-recheck';

/** Patch id: a rollout that failed in an `auto_rollback` tier starts its rollback. */
export const AUTO_ROLLBACK = 'deploy-auto-rollback';

const rollout = proxyActivities<Activities>(DRIVER_STEP);

/** What the parts of one deployment's run share. */
export interface Run {
  input: DeployInput;
  db: ReturnType<typeof proxyLocalActivities<Activities>>;
  state: DeploymentState;
  /** Approvers whose decision is being applied or waits its turn. */
  deciding: Set<string>;
  /** Takes in what a step answered: the status (kept current in the IdpStatus search attribute) and the approvers. */
  apply(next: DeploymentState | { status: DeploymentStatus }): void;
  /** The run takes decisions one at a time ({@link SERIAL_DECISIONS}); set once, first thing. */
  serial: boolean;
  /** No decision is taken any more: the approval timer fired, or the run is ending. */
  closed: boolean;
  /** The target's reports (callbacks), taken in from the start. */
  reports: Reports;
  /** How the rollout reaches the target, once read. */
  plan: DeliveryPlan | null;
  /** Set once the target may have heard of the rollout (a cancellation then tells it). */
  dispatched: { value: boolean };
}

/** Rolls the version out through the simulated driver (runs started before {@link DELIVERY_TARGETS}). */
async function rollOutSimulated(run: Run): Promise<void> {
  const id = run.input.deploymentId;
  try {
    const detail = await rollout.runDeployment(id);
    run.apply({ status: await run.db.transitionDeployment(id, ['in_progress'], 'succeeded', detail) });
  } catch (err) {
    if (isCancellation(err)) throw err;
    const message = failureMessage(err);
    run.apply({ status: await run.db.transitionDeployment(id, ['in_progress'], 'failed', message) });
    throw ApplicationFailure.nonRetryable(`deployment failed: ${message}`, FAILURE_TYPES.deployFailed);
  }
}

/**
 * Records `failed` from `from`, starts the automatic rollback when one is due (a child that
 * outlives this run: it is in this run's history, so a crash between the two still starts it, once),
 * and ends the run with a failure of `type`.
 */
async function failFrom(
  run: Run,
  from: DeploymentStatus,
  message: string,
  type: string,
  actor: string | null,
): Promise<never> {
  const id = run.input.deploymentId;
  run.apply({
    status: await run.db.transitionDeployment(id, [from], 'failed', message, { actor: actor ?? undefined }),
  });
  if (patched(AUTO_ROLLBACK)) {
    const rollback = await run.db.startAutoRollback(id);
    if (rollback) await startDeploymentChild(rollback, ParentClosePolicy.ABANDON);
  }
  throw ApplicationFailure.nonRetryable(
    type === FAILURE_TYPES.deployFailed ? `deployment failed: ${message}` : message,
    type,
  );
}

/** Waits, durably, while a deploy freeze holds the tier (a timeline entry says until when). */
async function waitOutFreezes(run: Run): Promise<void> {
  if (!patched(FREEZE_RECHECK)) return;
  const id = run.input.deploymentId;
  for (;;) {
    const freeze = await run.db.freezeCheck(id);
    if (!freeze) return;
    await run.db.noteDeploymentWait(
      id,
      `freeze:${freeze.window}:${freeze.until}`,
      `waiting for deploy freeze '${freeze.window}' to end at ${freeze.until}`,
    );
    await sleep(Math.max(1000, Date.parse(freeze.until) - Date.now()));
  }
}

/**
 * Rolls the version out through the deployment's target, then verifies it when its environment
 * says so (`verifying`, holding the lock), and records `succeeded` or `failed`.
 */
export async function rollOut(run: Run): Promise<void> {
  if (!patched(DELIVERY_TARGETS)) return rollOutSimulated(run);
  await waitOutFreezes(run);
  const id = run.input.deploymentId;
  const job: JobRef = { type: 'deployment', id };
  const plan = (run.plan = await run.db.planDelivery(job));
  const done = await deliverToTarget(job, 'deploy', plan, run.reports, run.dispatched, run.db);
  if (!done.ok)
    return failFrom(run, 'in_progress', done.message, FAILURE_TYPES.deployFailed, done.reportedBy);
  if (done.externalUrl) upsertMemo({ external_url: done.externalUrl });
  const reported = { actor: done.reportedBy ?? undefined, externalUrl: done.externalUrl };
  if (!plan.verification) {
    run.apply({
      status: await run.db.transitionDeployment(id, ['in_progress'], 'succeeded', done.detail, reported),
    });
    return;
  }
  const checking = `${done.detail}; verifying ${plan.verification.url}`;
  run.apply({
    status: await run.db.transitionDeployment(id, ['in_progress'], 'verifying', checking, reported),
  });
  let verdict: Awaited<ReturnType<typeof verifyRollout>>;
  try {
    verdict = await verifyRollout(id, plan.verification);
  } catch (err) {
    // The probes themselves could not run to the end (their worker lost again and again): the
    // deployment must not stay in `verifying`, holding its environment.
    if (isCancellation(err)) throw err;
    return failFrom(
      run,
      'verifying',
      `verification failed: ${failureMessage(err)}`,
      FAILURE_TYPES.verificationFailed,
      null,
    );
  }
  if (!verdict.ok) return failFrom(run, 'verifying', verdict.message, FAILURE_TYPES.verificationFailed, null);
  run.apply({ status: await run.db.transitionDeployment(id, ['verifying'], 'succeeded', verdict.detail) });
}
