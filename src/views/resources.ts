import type {
  Approval,
  AuditLog,
  Deployment,
  Environment,
  PlatformPolicy,
  Release,
  Service,
  Target,
  Team,
  WebhookDelivery,
  WebhookSubscription,
} from '../domain/entities';
import type { Config } from '../config';

/** What a view needs of the configuration: where the Temporal Web UI is. */
export type ViewSettings = Pick<Config, 'TEMPORAL_UI_URL' | 'TEMPORAL_NAMESPACE'>;

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** Where a run opens in the Temporal Web UI. */
export function temporalUiUrl(config: ViewSettings, jobId: string): string {
  const base = config.TEMPORAL_UI_URL.replace(/\/+$/, '');
  return `${base}/namespaces/${encodeURIComponent(config.TEMPORAL_NAMESPACE)}/workflows/${encodeURIComponent(jobId)}`;
}

export const teamJson = (t: Team) => ({
  id: t.id,
  name: t.name,
  display_name: t.displayName,
  created_at: iso(t.createdAt),
});

export const serviceJson = (s: Service, team: Pick<Team, 'id' | 'name'> | null) => ({
  id: s.id,
  name: s.name,
  tags: s.tags,
  team: team ? { id: team.id, name: team.name } : null,
  description: s.description,
  created_at: iso(s.createdAt),
  updated_at: iso(s.updatedAt),
});

export const environmentJson = (e: Environment, config: ViewSettings) => ({
  id: e.id,
  service_id: e.serviceId,
  name: e.name,
  tier: e.tier,
  status: e.status,
  config: e.config,
  job_id: e.jobId,
  target: e.target,
  verification: e.verification,
  external_url: e.externalUrl,
  error: e.error,
  created_at: iso(e.createdAt),
  updated_at: iso(e.updatedAt),
  temporal_ui_url: temporalUiUrl(config, e.jobId),
});

export const approvalJson = (a: Pick<Approval, 'approver' | 'decision' | 'comment' | 'at'>) => ({
  approver: a.approver,
  decision: a.decision,
  comment: a.comment,
  at: iso(a.at),
});

export const deploymentJson = (
  d: Deployment,
  approvals: Pick<Approval, 'approver' | 'decision' | 'comment' | 'at'>[],
  config: ViewSettings,
) => ({
  id: d.id,
  job_id: d.jobId,
  service_id: d.serviceId,
  environment_id: d.environmentId,
  tier: d.tier,
  version: d.version,
  status: d.status,
  initiated_by: d.initiatedBy,
  requested_by: d.requestedBy,
  team: d.team,
  config: d.config,
  target: d.target,
  external_url: d.externalUrl,
  kind: d.kind,
  rollback_of: d.rollbackOf,
  rolled_back_by: d.rolledBackBy,
  release_id: d.releaseId,
  freeze_override: d.freezeOverride ? { reason: d.freezeOverride } : null,
  approvals_required: d.approvalsRequired,
  approvals: approvals.map(approvalJson),
  timeline: d.timeline,
  error: d.error,
  created_at: iso(d.createdAt),
  updated_at: iso(d.updatedAt),
  finished_at: iso(d.finishedAt),
  temporal_ui_url: temporalUiUrl(config, d.jobId),
});

export const policyJson = (p: PlatformPolicy) => ({
  name: p.name,
  kind: p.kind,
  enabled: p.enabled,
  config: p.config,
  updated_at: iso(p.updatedAt),
  updated_by: p.updatedBy,
});

export const auditJson = (a: AuditLog) => ({
  id: a.id,
  at: iso(a.at),
  actor: a.actor,
  actor_roles: a.actorRoles,
  action: a.action,
  outcome: a.outcome,
  target_type: a.targetType,
  target_id: a.targetId,
  team: a.team,
  correlation_id: a.correlationId,
  details: a.details,
  prev_hash: a.prevHash,
  hash: a.hash,
});

/** A target as anyone may read it: never its secret. */
export const targetJson = (t: Target) => ({
  name: t.name,
  kind: t.kind,
  config: t.config,
  description: t.description,
  created_at: iso(t.createdAt),
  updated_at: iso(t.updatedAt),
});

/** A release, each deployment of its stages with its live status. */
export const releaseJson = (r: Release, statuses: Map<number, string>, config: ViewSettings) => ({
  id: r.id,
  job_id: r.jobId,
  service_id: r.serviceId,
  version: r.version,
  config: r.config,
  description: r.description,
  status: r.status,
  through: r.through,
  stages: r.stages.map((s) => ({
    tier: s.tier,
    status: s.status,
    deployments: s.deployments.map((d) => ({
      environment_id: d.environment_id,
      environment: d.environment,
      deployment_id: d.deployment_id,
      status: d.deployment_id === null ? d.status : (statuses.get(d.deployment_id) ?? d.status),
      waiting_for: d.waiting_for ?? null,
    })),
    soak_until: s.soak_until,
  })),
  requested_by: r.requestedBy,
  team: r.team,
  error: r.error,
  freeze_override: r.freezeOverride ? { reason: r.freezeOverride } : null,
  created_at: iso(r.createdAt),
  updated_at: iso(r.updatedAt),
  finished_at: iso(r.finishedAt),
  temporal_ui_url: temporalUiUrl(config, r.jobId),
});

/** A subscription as its owners read it: never its secret. */
export const webhookJson = (w: WebhookSubscription) => ({
  id: w.id,
  url: w.url,
  events: w.events,
  team: w.team,
  description: w.description,
  created_by: w.createdBy,
  created_at: iso(w.createdAt),
  job_id: w.jobId,
});

/** One delivery attempt. */
export const deliveryJson = (d: WebhookDelivery) => ({
  event_id: d.eventId,
  type: d.type,
  attempt: d.attempt,
  status_code: d.statusCode,
  error: d.error,
  at: iso(d.at),
});
