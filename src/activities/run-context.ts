import { Context } from '@temporalio/activity';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { recordChange, type Subject } from '../db/changes';
import type { AuditEntry, MoveFacts } from '../domain/lifecycle';
import { activityCorrelation } from './correlation';

/** The actor of the moves the worker makes on its own (not on someone's decision). */
export const SYSTEM_ACTOR = 'system:worker';

/** Where the running activity is: its workflow, run and type (kept in its audit entries and logs). */
export function runInfo(): { workflow_id: string; run_id: string; activity: string } {
  const info = Context.current().info;
  return {
    workflow_id: info.workflowExecution?.workflowId ?? '',
    run_id: info.workflowExecution?.runId ?? '',
    activity: info.activityType,
  };
}

/** The correlation id the activity runs under (from the workflow's header), else `fallback`. */
export function correlationId(fallback: string | null): string | null {
  return activityCorrelation.getStore() ?? fallback;
}

/** The facts of a move the running activity makes as `actor`. */
export function moveFacts(
  actor: string,
  fallbackCorrelation: string | null,
  more: Omit<MoveFacts, 'actor' | 'correlationId' | 'context'> = {},
): MoveFacts {
  return { actor, correlationId: correlationId(fallbackCorrelation), context: runInfo(), ...more };
}

/**
 * Records an audit entry (and the event it announces, about `subject`) in `em`'s transaction: it
 * commits with the change it records (src/db/changes.ts).
 */
export function record(em: EntityManager, entry: AuditEntry, subject?: Subject): void {
  recordChange(em, entry, subject);
}

/** A logger carrying the running activity's run and correlation id. */
export function activityLogger(logger: Logger): Logger {
  return logger.child({ ...runInfo(), correlation_id: activityCorrelation.getStore() });
}

/**
 * Heartbeats the running activity every second (with `details()`, when given) until the returned
 * function is called: for steps that wait on something else (a request, a process, a probe's
 * interval) longer than the heartbeat timeout.
 */
export function keepBeating(details?: () => unknown): () => void {
  const ctx = Context.current();
  const beat = (): void => ctx.heartbeat(details?.());
  beat();
  const timer = setInterval(beat, 1000);
  return () => clearInterval(timer);
}
