/**
 * A subscription's deliveries: one run per subscription, not per event. Its activity delivers the
 * subscription's events (each resource's in order, several resources at once) for a few minutes at
 * a time, retrying each with backoff and keeping its place in PostgreSQL (the subscription's cursor,
 * the delivery log), so the run's history grows by a handful of events per few minutes however many
 * events there are, and a lost worker or a restart of everything resumes where the cursor is. One
 * run per event would have cost a workflow start, several tasks and a history per event: more than
 * the whole deployment it announces. Runs live on a task queue of their own, so a dead receiver
 * holds only its own run (and its activity slot), never a deployment's.
 */
import { continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { NotifyInput } from './contract';

const pump = proxyActivities<Activities>({
  // The pump hands over after at most ~4 minutes; a worker lost meanwhile is noticed within 30 s.
  startToCloseTimeout: '6m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/** Continue as new after this many pumps (a pump is 3 history events). */
const PUMPS_PER_RUN = 200;

/** Delivers a subscription's events until it is deleted (or the run is cancelled). */
export async function deliverEvents(input: NotifyInput): Promise<void> {
  for (let i = 0; i < PUMPS_PER_RUN && !workflowInfo().continueAsNewSuggested; i++) {
    const { deleted } = await pump.pumpDeliveries(input.subscriptionId);
    if (deleted) return;
  }
  await continueAsNew<typeof deliverEvents>(input);
}
