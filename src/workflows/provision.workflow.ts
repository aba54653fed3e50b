import {
  ApplicationFailure,
  isCancellation,
  proxyActivities,
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

const db = proxyActivities<Activities>(DB_STEP);
const driver = proxyActivities<Activities>(DRIVER_STEP);

/** Provisions one environment through the driver and records `ready` or `failed`. */
export async function provisionEnvironment(input: ProvisionInput): Promise<ProvisionResult> {
  try {
    await driver.provisionResources(input);
  } catch (err) {
    if (isCancellation(err)) throw err;
    const message = failureMessage(err);
    await db.markEnvironment(input.environmentId, 'failed', message);
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'failed' }]);
    throw ApplicationFailure.nonRetryable(`provisioning failed: ${message}`, FAILURE_TYPES.provisionFailed);
  }
  const status = await db.markEnvironment(input.environmentId, 'ready', null);
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: status }]);
  return { status: status as ProvisionResult['status'] };
}
