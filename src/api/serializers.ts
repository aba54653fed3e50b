import type {
  Approval,
  AuditLog,
  Deployment,
  Environment,
  PlatformPolicy,
  Service,
  Target,
  Team,
} from '../domain/entities';
import type { Config } from '../config';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** Where a run opens in the Temporal Web UI. */
export function temporalUiUrl(config: Config, jobId: string): string {
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

export const environmentJson = (e: Environment, config: Config) => ({
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

export const approvalJson = (a: Approval) => ({
  approver: a.approver,
  decision: a.decision,
  comment: a.comment,
  at: iso(a.at),
});

export const deploymentJson = (d: Deployment, approvals: Approval[], config: Config) => ({
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
