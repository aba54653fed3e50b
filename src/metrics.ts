import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The process's metrics. One registry per process; in `npm run dev` the API and the worker share it,
 * in production each serves its own.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const httpDuration = new Histogram({
  name: 'idp_http_request_duration_seconds',
  help: 'HTTP request duration by method, route template and status',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export const guardrailViolations = new Counter({
  name: 'idp_guardrail_violations_total',
  help: 'Guardrail violations refused, by rule and action',
  labelNames: ['rule', 'action'] as const,
  registers: [registry],
});

export const authFailures = new Counter({
  name: 'idp_auth_failures_total',
  help: 'Requests refused by authentication (401) or authorization (403)',
  labelNames: ['status', 'reason'] as const,
  registers: [registry],
});

export const deploymentsStarted = new Counter({
  name: 'idp_deployments_started_total',
  help: 'Deployments whose workflow was started, by tier',
  labelNames: ['tier'] as const,
  registers: [registry],
});

export const deploymentsFinished = new Counter({
  name: 'idp_deployments_finished_total',
  help: 'Deployments that reached an end state, by tier and outcome',
  labelNames: ['tier', 'outcome'] as const,
  registers: [registry],
});

export const approvalWait = new Histogram({
  name: 'idp_approval_wait_seconds',
  help: 'Time a deployment waited for its approval decision, by outcome',
  labelNames: ['outcome'] as const,
  buckets: [1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600],
  registers: [registry],
});

export const workflowStartFailures = new Counter({
  name: 'idp_workflow_start_failures_total',
  help: 'Workflow starts that failed, by kind',
  labelNames: ['kind'] as const,
  registers: [registry],
});

export const targetDispatches = new Counter({
  name: 'idp_target_dispatches_total',
  help: 'Jobs handed to their target, by target kind and outcome (accepted, succeeded, failed, retried, cancelled)',
  labelNames: ['kind', 'outcome'] as const,
  registers: [registry],
});

export const callbackLatency = new Histogram({
  name: 'idp_target_callback_latency_seconds',
  help: "Time from a target's acceptance of a job to its completing callback, by target kind",
  labelNames: ['kind'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
  registers: [registry],
});

export const verifications = new Counter({
  name: 'idp_verifications_total',
  help: 'Verifications after a rollout, by outcome (passed, failed)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const callbacksReceived = new Counter({
  name: 'idp_target_callbacks_total',
  help: "Targets' callbacks, by answer (accepted, duplicate, unauthorized, not_found, conflict)",
  labelNames: ['answer'] as const,
  registers: [registry],
});

export const freezeRefusals = new Counter({
  name: 'idp_freeze_refusals_total',
  help: 'Deployments and releases refused because a deploy freeze holds the tier, by tier',
  labelNames: ['tier'] as const,
  registers: [registry],
});

export const freezeOverrides = new Counter({
  name: 'idp_freeze_overrides_total',
  help: 'Deployments and releases let through a deploy freeze by a PLATFORM_ADMIN (freeze_override), by tier',
  labelNames: ['tier'] as const,
  registers: [registry],
});

export const rollbacksStarted = new Counter({
  name: 'idp_rollbacks_total',
  help: 'Rollbacks started, by trigger (manual, automatic) and tier',
  labelNames: ['trigger', 'tier'] as const,
  registers: [registry],
});

export const releasesFinished = new Counter({
  name: 'idp_releases_finished_total',
  help: 'Releases that reached an end state, by outcome',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const eventsWritten = new Counter({
  name: 'idp_events_written_total',
  help: 'Events written to the outbox (with their audit entries), by type',
  labelNames: ['type'] as const,
  registers: [registry],
});

export const webhookDeliveries = new Counter({
  name: 'idp_webhook_deliveries_total',
  help: 'Attempts to deliver events to webhook subscriptions, by outcome (delivered, retried, failed)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const deliveryLag = new Histogram({
  name: 'idp_webhook_delivery_lag_seconds',
  help: 'Time from an event to its delivery to a subscription',
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400],
  registers: [registry],
});

export const sseStreams = new Gauge({
  name: 'idp_sse_streams_open',
  help: 'Live event streams (GET /api/events) open now',
  registers: [registry],
});
