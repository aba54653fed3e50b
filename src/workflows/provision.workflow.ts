import {
  ApplicationFailure,
  isCancellation,
  patched,
  proxyActivities,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DB_STEP, DRIVER_STEP } from './presets';
import {
  FAILURE_TYPES,
  SEARCH_ATTRIBUTES,
  type ProvisionInput,
  type ProvisionResult,
  failureMessage,
} from './contract';
import { DELIVERY_TARGETS, acceptReports, deliverToTarget, remoteSteps } from './delivery';

const db = proxyActivities<Activities>(DB_STEP);
const driver = proxyActivities<Activities>(DRIVER_STEP);

/** The target's part: through the environment's target, or (runs from before targets) the simulated driver. */
async function provisionThroughTarget(
  input: ProvisionInput,
  reports: ReturnType<typeof acceptReports>,
): Promise<{ ok: true; externalUrl: string | null } | { ok: false; message: string }> {
  if (!patched(DELIVERY_TARGETS)) {
    try {
      await driver.provisionResources(input);
      return { ok: true, externalUrl: null };
    } catch (err) {
      if (isCancellation(err)) throw err;
      return { ok: false, message: failureMessage(err) };
    }
  }
  const job = { type: 'environment' as const, id: input.environmentId };
  const plan = await remoteSteps.planDelivery(job);
  const done = await deliverToTarget(job, 'provision', plan, reports, { value: false }, remoteSteps);
  return done.ok ? { ok: true, externalUrl: done.externalUrl } : { ok: false, message: done.message };
}

/** Provisions one environment through its target and records `ready` or `failed`. */
export async function provisionEnvironment(input: ProvisionInput): Promise<ProvisionResult> {
  const reports = acceptReports();
  const done = await provisionThroughTarget(input, reports);
  if (!done.ok) {
    await db.markEnvironment(input.environmentId, 'failed', done.message);
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'failed' }]);
    throw ApplicationFailure.nonRetryable(
      `provisioning failed: ${done.message}`,
      FAILURE_TYPES.provisionFailed,
    );
  }
  if (done.externalUrl) upsertMemo({ external_url: done.externalUrl });
  const status = await db.markEnvironment(
    input.environmentId,
    'ready',
    null,
    done.externalUrl ? { externalUrl: done.externalUrl } : {},
  );
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: status }]);
  return { status: status as ProvisionResult['status'] };
}
