/**
 * Audit entries: their shape as the `audit_log` table keeps it, and the one rule that builds every
 * entry — a status change's (through the lifecycle module), a request's, a refusal's, a decision's.
 */
/** Outcome of an audit entry. */
export type AuditOutcome = 'success' | 'denied' | 'violation' | 'failure';

/** An audit entry as the `audit_log` table stores it (the ORM entity has these fields). */
export interface AuditEntry {
  at: Date;
  actor: string;
  actorRoles: string[];
  action: string;
  outcome: AuditOutcome;
  targetType: string;
  targetId: string | null;
  team: string | null;
  correlationId: string | null;
  details: Record<string, unknown>;
  dedupeKey: string | null;
}

/** Who makes a move, and what they say about it. */
export interface MoveFacts {
  actor: string;
  actorRoles?: readonly string[];
  correlationId: string | null;
  /** Shown in the timeline entry and kept in the audit entry. */
  detail?: string;
  /** Kept on the row as its error (failed, expired, rejected). */
  error?: string;
  at?: Date;
  /** More audit details (where the move was made: run and activity, or the request). */
  context?: Record<string, unknown>;
}

/** The dedupe key of a status change: one entry per job and status, however often a step repeats. */
export const statusDedupeKey = (jobId: string, to: string): string => `${jobId}:status:${to}`;

/** The audit entry of a move of a `kind` row from `from` to `to` (the lifecycle module's moves). */
export function moveEntry(
  kind: 'deployment' | 'environment' | 'release',
  id: number,
  team: string | null,
  jobId: string,
  from: string,
  to: string,
  outcome: AuditOutcome,
  facts: MoveFacts,
  at: Date,
): AuditEntry {
  return {
    at,
    actor: facts.actor,
    actorRoles: [...(facts.actorRoles ?? [])],
    action: `${kind}.${to}`,
    outcome,
    targetType: kind,
    targetId: String(id),
    team,
    correlationId: facts.correlationId,
    details: {
      from,
      to,
      job_id: jobId,
      ...(facts.detail ? { detail: facts.detail } : {}),
      ...(facts.error ? { error: facts.error } : {}),
      ...facts.context,
    },
    dedupeKey: statusDedupeKey(jobId, to),
  };
}

/** The pieces of an audit entry that are not a status change (a request, a refusal, a decision). */
export interface AuditFacts {
  action: string;
  outcome: AuditOutcome;
  targetType: string;
  targetId?: string | number | null;
  team?: string | null;
  details?: Record<string, unknown>;
  /** Set where a retried step must write its entry once. */
  dedupeKey?: string | null;
}

/** Builds an audit entry by the same rule as the moves: who, when, what, on which target, how it ended. */
export function auditEntry(
  who: { actor: string; actorRoles?: readonly string[]; correlationId: string | null; at?: Date },
  facts: AuditFacts,
): AuditEntry {
  return {
    at: who.at ?? new Date(),
    actor: who.actor,
    actorRoles: [...(who.actorRoles ?? [])],
    action: facts.action,
    outcome: facts.outcome,
    targetType: facts.targetType,
    targetId: facts.targetId === undefined || facts.targetId === null ? null : String(facts.targetId),
    team: facts.team ?? null,
    correlationId: who.correlationId,
    details: facts.details ?? {},
    dedupeKey: facts.dedupeKey ?? null,
  };
}

/** The audit entry of one approver's decision on a deployment (written once per approver). */
export function decisionEntry(
  d: { id: number; jobId: string; team: string | null },
  decision: {
    approver: string;
    roles: readonly string[];
    decision: 'approve' | 'reject';
    comment: string | null;
    correlationId: string | null;
  },
  context: Record<string, unknown> = {},
): AuditEntry {
  return auditEntry(
    { actor: decision.approver, actorRoles: decision.roles, correlationId: decision.correlationId },
    {
      action: `deployment.${decision.decision}`,
      outcome: 'success',
      targetType: 'deployment',
      targetId: d.id,
      team: d.team,
      details: { ...context, ...(decision.comment ? { comment: decision.comment } : {}) },
      dedupeKey: `${d.jobId}:decision:${decision.approver}`,
    },
  );
}

/**
 * The audit entry (and so the event) of a deployment replaced by a rollback: `rolled_back_by` set
 * on `replaced` (the caller sets it), once per rollback.
 */
export function rolledBackEntry(
  replaced: { id: number; jobId: string; team: string | null },
  rollback: { id: number; jobId: string; version: string },
  who: {
    actor: string;
    actorRoles?: readonly string[];
    correlationId: string | null;
    context?: Record<string, unknown>;
  },
): AuditEntry {
  return auditEntry(who, {
    action: 'deployment.rolled_back',
    outcome: 'success',
    targetType: 'deployment',
    targetId: replaced.id,
    team: replaced.team,
    details: {
      rolled_back_by: rollback.id,
      job_id: rollback.jobId,
      to_version: rollback.version,
      ...who.context,
    },
    dedupeKey: `${replaced.jobId}:rolled_back_by:${rollback.id}`,
  });
}

/** The audit entry (and so the event) of the `n`-th reminder that a deployment still waits for approval. */
export function reminderEntry(
  d: { id: number; jobId: string; team: string | null; approvalsRequired: number },
  n: number,
  who: { actor: string; correlationId: string | null; context?: Record<string, unknown> },
): AuditEntry {
  return auditEntry(who, {
    action: 'deployment.approval_reminder',
    outcome: 'success',
    targetType: 'deployment',
    targetId: d.id,
    team: d.team,
    details: { reminder: n, approvals_required: d.approvalsRequired, job_id: d.jobId, ...who.context },
    dedupeKey: `${d.jobId}:reminder:${n}`,
  });
}
