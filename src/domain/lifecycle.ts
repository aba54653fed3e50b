/**
 * The lifecycle of deployments and environments, in one place: their statuses, the moves between
 * them, and what every move leaves behind (the timeline entry and the audit entry), built by one
 * rule. The API, the activities and the workflows use only this module for status changes; it is
 * pure (no ORM, no Temporal), so workflow code may import it.
 *
 * Adding a status is one edit here (the list, its moves, its audit outcome) plus its handling —
 * and, for a status that holds the environment lock, the lock index's migration.
 */
import { ConflictError } from './errors';
import { moveEntry, type AuditEntry, type AuditOutcome, type MoveFacts } from './audit-entries';

export type { MoveFacts } from './audit-entries';

export {
  auditEntry,
  decisionEntry,
  reminderEntry,
  rolledBackEntry,
  statusDedupeKey,
  type AuditEntry,
  type AuditFacts,
  type AuditOutcome,
} from './audit-entries';

/** Deployment statuses, in lifecycle order. */
export const DEPLOYMENT_STATUSES = [
  'pending',
  'awaiting_approval',
  'in_progress',
  'verifying',
  'succeeded',
  'failed',
  'rejected',
  'expired',
  'cancelled',
] as const;
export type DeploymentStatus = (typeof DEPLOYMENT_STATUSES)[number];

/** Environment statuses. */
export const ENVIRONMENT_STATUSES = ['provisioning', 'ready', 'failed'] as const;
export type EnvironmentStatus = (typeof ENVIRONMENT_STATUSES)[number];

/**
 * Where each deployment status may go. A status with no way out is an end state. Cancellation is
 * possible from every active status; only a run that was allowed to start can succeed.
 */
export const DEPLOYMENT_MOVES: { readonly [S in DeploymentStatus]: readonly DeploymentStatus[] } = {
  pending: ['awaiting_approval', 'in_progress', 'failed', 'cancelled'],
  awaiting_approval: ['in_progress', 'rejected', 'expired', 'cancelled'],
  in_progress: ['verifying', 'succeeded', 'failed', 'cancelled'],
  verifying: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  rejected: [],
  expired: [],
  cancelled: [],
};

/** Release statuses. */
export const RELEASE_STATUSES = ['pending', 'in_progress', 'succeeded', 'failed', 'cancelled'] as const;
export type ReleaseStatus = (typeof RELEASE_STATUSES)[number];

/** Where each release status may go. */
export const RELEASE_MOVES: { readonly [S in ReleaseStatus]: readonly ReleaseStatus[] } = {
  pending: ['in_progress', 'failed', 'cancelled'],
  in_progress: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
};

/** Where each environment status may go. */
export const ENVIRONMENT_MOVES: { readonly [S in EnvironmentStatus]: readonly EnvironmentStatus[] } = {
  provisioning: ['ready', 'failed'],
  ready: [],
  failed: [],
};

/** Statuses in which a deployment holds its environment's lock (every status that is not an end state). */
export const ACTIVE_DEPLOYMENT_STATUSES: readonly DeploymentStatus[] = DEPLOYMENT_STATUSES.filter(
  (s) => DEPLOYMENT_MOVES[s].length > 0,
);

/** True for a status a deployment never leaves. */
export function isTerminal(status: DeploymentStatus): boolean {
  return DEPLOYMENT_MOVES[status].length === 0;
}

/** A move the transition table forbids (a bug in the caller, or a stale read it must re-check). */
export class IllegalTransitionError extends ConflictError {}

/** One entry of a deployment's timeline. */
export interface TimelineEntry {
  status: DeploymentStatus;
  at: string;
  actor?: string;
  detail?: string;
}

// Failure outcomes are the moves in which the platform could not do what was asked; a rejection
// or an expiry is the approval rule working, a cancellation someone's request.
const DEPLOYMENT_OUTCOME: { readonly [S in DeploymentStatus]: AuditOutcome } = {
  pending: 'success',
  awaiting_approval: 'success',
  in_progress: 'success',
  verifying: 'success',
  succeeded: 'success',
  failed: 'failure',
  rejected: 'success',
  expired: 'success',
  cancelled: 'success',
};
const ENVIRONMENT_OUTCOME: { readonly [S in EnvironmentStatus]: AuditOutcome } = {
  provisioning: 'success',
  ready: 'success',
  failed: 'failure',
};

/** The fields of a deployment that a move reads and changes. */
export interface DeploymentRecord {
  id: number;
  jobId: string;
  team: string | null;
  status: DeploymentStatus;
  timeline: TimelineEntry[];
  error: string | null;
  finishedAt: Date | null;
}

/** The fields of an environment that a move reads and changes. */
export interface EnvironmentRecord {
  id: number;
  jobId: string;
  status: EnvironmentStatus;
  error: string | null;
}

/** True when the table allows a deployment to move from `from` to `to`. */
export function canMoveDeployment(from: DeploymentStatus, to: DeploymentStatus): boolean {
  return DEPLOYMENT_MOVES[from].includes(to);
}

/**
 * Moves a deployment to `to`: sets its status, appends the timeline entry, keeps the error and the
 * finish time of an end state, and returns the audit entry of the move (for the caller to write in
 * the same transaction). Throws {@link IllegalTransitionError} for a move the table forbids.
 */
export function moveDeployment(d: DeploymentRecord, to: DeploymentStatus, facts: MoveFacts): AuditEntry {
  const from = d.status;
  if (!canMoveDeployment(from, to)) {
    throw new IllegalTransitionError(`deployment ${d.id} cannot move from ${from} to ${to}`, { from, to });
  }
  const at = facts.at ?? new Date();
  d.status = to;
  d.timeline = [
    ...d.timeline,
    {
      status: to,
      at: at.toISOString(),
      actor: facts.actor,
      ...(facts.detail ? { detail: facts.detail } : {}),
    },
  ];
  if (facts.error !== undefined) d.error = facts.error;
  if (isTerminal(to)) d.finishedAt = at;
  return moveEntry('deployment', d.id, d.team, d.jobId, from, to, DEPLOYMENT_OUTCOME[to], facts, at);
}

/**
 * Notes something about a deployment without moving it (a target's progress report, a wait for a
 * deploy freeze): a timeline entry under its current status, and the audit entry of the note, keyed
 * by `key` so that a repeated step notes it once. Throws {@link IllegalTransitionError} for a
 * deployment that has ended: nothing is noted on an end state.
 */
export function noteDeployment(
  d: DeploymentRecord,
  key: string,
  facts: MoveFacts & { detail: string },
): AuditEntry {
  if (isTerminal(d.status)) {
    throw new IllegalTransitionError(`deployment ${d.id} has ended (${d.status}); nothing is noted on it`, {
      status: d.status,
    });
  }
  const at = facts.at ?? new Date();
  d.timeline = [
    ...d.timeline,
    { status: d.status, at: at.toISOString(), actor: facts.actor, detail: facts.detail },
  ];
  return {
    ...moveEntry('deployment', d.id, d.team, d.jobId, d.status, d.status, 'success', facts, at),
    action: 'deployment.note',
    dedupeKey: `${d.jobId}:note:${key}`,
  };
}

/**
 * Moves an environment to `to` (its status and error) and returns the audit entry of the move.
 * Throws {@link IllegalTransitionError} for a move the table forbids.
 */
export function moveEnvironment(
  env: EnvironmentRecord,
  team: string | null,
  to: EnvironmentStatus,
  facts: MoveFacts,
): AuditEntry {
  const from = env.status;
  if (!ENVIRONMENT_MOVES[from].includes(to)) {
    throw new IllegalTransitionError(`environment ${env.id} cannot move from ${from} to ${to}`, { from, to });
  }
  env.status = to;
  if (facts.error !== undefined) env.error = facts.error;
  return moveEntry(
    'environment',
    env.id,
    team,
    env.jobId,
    from,
    to,
    ENVIRONMENT_OUTCOME[to],
    facts,
    facts.at ?? new Date(),
  );
}

/** The fields of a release that a move reads and changes. */
export interface ReleaseRecord {
  id: number;
  jobId: string;
  team: string | null;
  status: ReleaseStatus;
  error: string | null;
  finishedAt: Date | null;
}

/**
 * Moves a release to `to` (its status, its error, the finish time of an end state) and returns the
 * audit entry of the move. Throws {@link IllegalTransitionError} for a move the table forbids.
 */
export function moveRelease(r: ReleaseRecord, to: ReleaseStatus, facts: MoveFacts): AuditEntry {
  const from = r.status;
  if (!RELEASE_MOVES[from].includes(to)) {
    throw new IllegalTransitionError(`release ${r.id} cannot move from ${from} to ${to}`, { from, to });
  }
  const at = facts.at ?? new Date();
  r.status = to;
  if (facts.error !== undefined) r.error = facts.error;
  if (RELEASE_MOVES[to].length === 0) r.finishedAt = at;
  return moveEntry(
    'release',
    r.id,
    r.team,
    r.jobId,
    from,
    to,
    to === 'failed' ? 'failure' : 'success',
    facts,
    at,
  );
}
