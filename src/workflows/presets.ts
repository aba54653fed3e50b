/**
 * Retry and timeout presets of the workflows' steps, in one place so the workflows cannot drift
 * apart (provisioning once lacked the NotFoundError rule that deployments had).
 */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';

/**
 * Short database steps: retried with backoff for as long as the database is away. A row that does
 * not exist (MikroORM's NotFoundError) will not appear by retrying: that fails the run, visibly,
 * instead of retrying out of sight inside the worker.
 */
export const DB_STEP: ActivityOptions & LocalActivityOptions = {
  startToCloseTimeout: '20s',
  retry: {
    initialInterval: '500ms',
    backoffCoefficient: 2,
    maximumInterval: '10s',
    nonRetryableErrorTypes: ['NotFoundError'],
  },
};

/**
 * A driver's work (provisioning, a rollout): long, heartbeating every second, so a dead worker's
 * attempt is retried elsewhere within 5 s; a few attempts, then the job fails.
 */
export const DRIVER_STEP: ActivityOptions = {
  startToCloseTimeout: '1h',
  heartbeatTimeout: '5s',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
};
