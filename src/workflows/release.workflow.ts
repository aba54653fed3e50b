/**
 * One version promoted through the tiers in one durable run: each stage (a tier of the promotion
 * order, up to `through`) deploys to every environment of the tier at once, each deployment an
 * ordinary `deployVersion` run started as a child (so every rule, lock, approval and audit entry is
 * the ordinary one, and the Web UI shows the release with its children). A busy environment is
 * waited for with a timer that backs off; a promotion gate's soak is one durable timer.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  ParentClosePolicy,
  continueAsNew,
  isCancellation,
  proxyActivities,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  FAILURE_TYPES,
  SEARCH_ATTRIBUTES,
  WORKFLOW_TYPES,
  failureMessage,
  jobSearchAttributes,
  type DeploymentStart,
  type ReleaseInput,
  type ReleasePlan,
} from './contract';
import { DB_STEP } from './presets';

const db = proxyActivities<Activities>(DB_STEP);

/** The first wait for a busy environment, and the longest (a day of waiting is under 2,000 events). */
const BUSY_FIRST_MS = 2_000;
const BUSY_MAX_MS = 5 * 60_000;
/** Past this many history events, the run continues as new between stages. */
const HISTORY_LIMIT = 2_000;

/** Starts a deployment's run as a child of this one (or of a run it ends before: ABANDON for auto-rollbacks). */
export function startDeploymentChild(
  start: DeploymentStart,
  parentClosePolicy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
) {
  return startChild(WORKFLOW_TYPES.deploy, {
    workflowId: start.jobId,
    args: [start.input],
    parentClosePolicy,
    typedSearchAttributes: jobSearchAttributes('deployment', start.input, 'pending') as never,
    memo: { requested_by: start.input.requestedBy, parent: workflowInfo().workflowId },
    staticSummary: start.summary,
    staticDetails: `requested by ${start.input.requestedBy} · started by ${workflowInfo().workflowId}`,
  });
}

/** One environment of a stage: waits while another deployment holds it, then runs its deployment to the end. */
async function deployTo(
  input: ReleaseInput,
  stage: number,
  env: { id: number; name: string },
): Promise<void> {
  let wait = BUSY_FIRST_MS;
  let opened = await db.openStageDeployment(input.releaseId, stage, env.id);
  while ('busy' in opened) {
    await sleep(wait);
    wait = Math.min(wait * 2, BUSY_MAX_MS);
    opened = await db.openStageDeployment(input.releaseId, stage, env.id);
  }
  const child = await startDeploymentChild(opened.start);
  try {
    await child.result();
  } catch (err) {
    // The stage reads how each deployment ended from its row (closeStage). Only the release's own
    // cancellation goes on from here: a stage deployment someone cancelled is a failed stage.
    if (isCancellation(err) && CancellationScope.current().consideredCancelled) throw err;
  }
}

/** Runs stage `index`: the soak after the tier before, then every environment at once. */
async function runStage(input: ReleaseInput, plan: ReleasePlan, index: number): Promise<void> {
  const stage = plan.stages[index]!;
  const soak = index > 0 ? plan.stages[index - 1]!.soakAfterSeconds : 0;
  if (soak > 0) {
    const until = await db.startSoak(input.releaseId, index, soak);
    const left = Date.parse(until) - Date.now();
    if (left > 0) await sleep(left);
  }
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.tier, value: stage.tier }]);
  // Every environment's deployment runs to its end (or its cancellation) before the stage is judged:
  // a sibling is never left running, or terminated, because another one ended first.
  const ended = await Promise.allSettled(stage.environments.map((env) => deployTo(input, index, env)));
  const failed = ended.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const closed = await db.closeStage(input.releaseId, index);
  if (!closed.ok) {
    const message = closed.message ?? `stage '${stage.tier}' failed`;
    await db.finishRelease(input.releaseId, 'failed', message);
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'failed' }]);
    throw ApplicationFailure.nonRetryable(`release failed: ${message}`, FAILURE_TYPES.releaseFailed);
  }
}

/**
 * A release: its stages in order; a failed, rejected or expired deployment fails it and no later
 * stage starts; cancelling it cancels the running stage's deployments (children). Continues as new
 * between stages when its history grows long.
 */
export async function releaseVersion(input: ReleaseInput): Promise<{ status: string }> {
  try {
    const plan = await db.beginRelease(input.releaseId);
    // Ended before its run got here (cancelled, or its start was taken for failed): nothing to run.
    if (plan.ended) return { status: plan.ended };
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'in_progress' }]);
    for (let i = plan.done; i < plan.stages.length; i++) {
      if (i > plan.done && workflowInfo().historyLength > HISTORY_LIMIT)
        await continueAsNew<typeof releaseVersion>(input);
      await runStage(input, plan, i);
    }
    await db.finishRelease(input.releaseId, 'succeeded', null);
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'succeeded' }]);
    return { status: 'succeeded' };
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    if (isCancellation(err)) {
      // The children were cancelled with this scope; the release records its end although cancelled.
      await CancellationScope.nonCancellable(async () => {
        await db.finishRelease(input.releaseId, 'cancelled', 'cancelled on request');
        upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'cancelled' }]);
      });
    } else if (!(err instanceof ApplicationFailure && err.type === FAILURE_TYPES.releaseFailed)) {
      // Anything else ends the release as failed on record, then fails the run.
      await CancellationScope.nonCancellable(() =>
        db.finishRelease(input.releaseId, 'failed', failureMessage(err)),
      );
    }
    throw err;
  }
}
