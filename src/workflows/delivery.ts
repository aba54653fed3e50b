/**
 * A job's way through its target, shared by provisioning and deployment runs: hand the job over
 * (an activity, retried by its policy), then, when the target only accepted it, wait durably for its
 * callback — a signal (see `targetReportSignal` in contract.ts) kept in the run's history, so a
 * callback that arrives while no worker runs, or before the hand-over's answer was processed, is
 * applied when the run gets to it. The wait is a timer of the target's `timeout`.
 */
import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  failureMessage,
  targetReportSignal,
  type DeliveryPlan,
  type JobRef,
  type TargetReport,
} from './contract';
import { DB_STEP, DRIVER_STEP } from './presets';

/** Patch id: provisioning and deployments go through their target (before: the simulated driver only). */
export const DELIVERY_TARGETS = 'delivery-targets';

/** The reports a run has received and not yet applied, each `webhook-id` once. */
export interface Reports {
  pending: TargetReport[];
  seen: Set<string>;
}

/** Takes targets' reports in (from the first workflow task on, so none is dropped). */
export function acceptReports(): Reports {
  const reports: Reports = { pending: [], seen: new Set() };
  setHandler(targetReportSignal, (report) => {
    if (reports.seen.has(report.webhookId)) return;
    reports.seen.add(report.webhookId);
    reports.pending.push(report);
  });
  return reports;
}

/** How the target's part of a job ended. */
export type Completion =
  | { ok: true; detail: string; externalUrl: string | null; reportedBy: string | null }
  | { ok: false; message: string; reportedBy: string | null };

/** The short database steps of a delivery (a run passes its own: local or remote activities). */
export type DeliverySteps = Pick<Activities, 'planDelivery' | 'noteReport' | 'observeCallback'>;

/** Remote short steps, for runs whose database steps are remote (provisioning). */
export const remoteSteps: DeliverySteps = proxyActivities<Activities>(DB_STEP);

/**
 * The hand-over's step. A webhook's request is short (10 s at most an attempt): a local activity,
 * run by the worker that holds the run, without a trip through the task queue (retried with the
 * same backoff; a lost worker's replacement sends it again, under the same `webhook-id`). A command
 * may run for its whole timeout and the simulated driver heartbeats: remote activities.
 */
function handOver(plan: DeliveryPlan) {
  if (plan.kind === 'webhook')
    return proxyLocalActivities<Activities>({
      startToCloseTimeout: '30s',
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
    });
  return proxyActivities<Activities>({
    ...DRIVER_STEP,
    startToCloseTimeout:
      plan.kind === 'command' ? `${plan.timeoutSeconds + 60}s` : DRIVER_STEP.startToCloseTimeout,
    // The run waits until a cancelled hand-over has stopped (a command's process group is gone).
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
}

/**
 * Hands the job to its target and, for a webhook that accepted it, waits for the completing
 * callback (applying `in_progress` reports as they come) until the target's timeout. A failed
 * hand-over, a `failed` report and the timeout end as `ok: false` with the message to record.
 * `dispatched` is set once the target may have heard of the job (for the cancel notice).
 */
export async function deliverToTarget(
  job: JobRef,
  action: 'provision' | 'deploy',
  plan: DeliveryPlan,
  reports: Reports,
  dispatched: { value: boolean },
  steps: DeliverySteps,
): Promise<Completion> {
  let accepted: number;
  try {
    dispatched.value = plan.kind === 'webhook';
    const outcome = await handOver(plan).deliver(job, action);
    if (outcome.status !== 'accepted')
      return outcome.status === 'succeeded'
        ? { ok: true, detail: outcome.detail, externalUrl: outcome.externalUrl, reportedBy: null }
        : { ok: false, message: outcome.detail, reportedBy: null };
    accepted = outcome.at;
  } catch (err) {
    if (isCancellation(err)) throw err;
    return { ok: false, message: failureMessage(err), reportedBy: null };
  }
  const reportedBy = `target:${plan.target}`;
  const deadline = Date.now() + plan.timeoutSeconds * 1000;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0 || !(await condition(() => reports.pending.length > 0, left))) {
      return {
        ok: false,
        message: `target '${plan.target}' reported no completion within ${plan.timeoutText}`,
        reportedBy: null,
      };
    }
    const report = reports.pending.shift()!;
    if (report.status === 'in_progress') {
      await steps.noteReport(job, plan.target, report);
      continue;
    }
    await steps.observeCallback(plan.kind, Date.parse(report.receivedAt) - accepted);
    const said = report.detail ? `: ${report.detail}` : '';
    return report.status === 'succeeded'
      ? {
          ok: true,
          detail: `target '${plan.target}' reported success${said}`,
          externalUrl: report.externalUrl,
          reportedBy,
        }
      : { ok: false, message: `target '${plan.target}' reported failure${said}`, reportedBy };
  }
}

/** Tells a webhook target the deployment is cancelled: best effort, a few attempts, never failing the cleanup. */
export async function noticeCancel(
  job: JobRef,
  plan: DeliveryPlan | null,
  dispatched: boolean,
): Promise<void> {
  if (!plan || plan.kind !== 'webhook' || !dispatched) return;
  const notice = proxyActivities<Activities>({
    startToCloseTimeout: '30s',
    heartbeatTimeout: '5s',
    retry: { initialInterval: '1s', maximumInterval: '5s', maximumAttempts: 3 },
  });
  await CancellationScope.nonCancellable(() => notice.sendCancel(job)).catch(() => undefined);
}

/** The probes after a rollout, as one heartbeating activity. */
export function verifyRollout(deploymentId: number, plan: NonNullable<DeliveryPlan['verification']>) {
  const probes = proxyActivities<Activities>({
    startToCloseTimeout: `${Math.ceil((plan.probes * plan.intervalMs) / 1000) + 120}s`,
    heartbeatTimeout: '15s',
    retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 5 },
  });
  return probes.verifyRollout(deploymentId, plan);
}
