/**
 * The baseline of the end-to-end figure: the smallest workflow that makes one activity round trip.
 * Benchmark-only (never registered by the product's worker); `scripts/bench.ts` runs it on a task
 * queue of its own.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { DeployInput } from '../../src/workflows/contract';

/** The one activity: does nothing, so what is measured is Temporal's round trip. */
export interface NoopActivities {
  touch(deploymentId: number): Promise<void>;
}

const { touch } = proxyActivities<NoopActivities>({ startToCloseTimeout: '20s' });

/** Takes the deployment workflow's input and returns its result shape after one activity. */
export async function benchNoop(input: DeployInput): Promise<{ status: string }> {
  await touch(input.deploymentId);
  return { status: 'succeeded' };
}
