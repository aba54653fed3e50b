/**
 * A deployment row as every writer creates it — the API's trigger and rollback, a release's stage,
 * an automatic rollback — with its creation's audit entry, in the caller's transaction: the id
 * first (the job id ends in it), `pending`, the timeline's first entry.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { Deployment, type DeploymentKind } from '../domain/entities';
import { recordChange } from './changes';
import { auditEntry } from '../domain/lifecycle';
import { deployJobId, type DeployInput } from '../workflows/contract';
import { nextId } from './next-id';

/** What a new deployment is. */
export interface NewDeployment {
  service: { id: number; name: string };
  environment: { id: number; name: string; tier: string; target: string };
  team: string | null;
  version: string;
  config: Record<string, unknown>;
  initiatedBy: string | null;
  requestedBy: string;
  approvalsRequired: number;
  approvalTimeoutSeconds: number;
  idempotencyKey: string | null;
  requestHash: string | null;
  correlationId: string;
  kind?: DeploymentKind;
  rollbackOf?: number | null;
  releaseId?: number | null;
  freezeOverride?: string | null;
}

/** Who creates it, for the audit entry. */
export interface Creator {
  actor: string;
  actorRoles: readonly string[];
  correlationId: string | null;
}

/** Adds the deployment and its `deployment.create` audit entry to `tx` (flushed by the caller's transaction). */
export async function insertDeployment(
  tx: EntityManager,
  d: NewDeployment,
  who: Creator,
  details: Record<string, unknown> = {},
): Promise<Deployment> {
  const id = await nextId(tx, 'deployment_id_seq');
  const jobId = deployJobId(d.service.name, d.environment.name, id);
  const now = new Date();
  const created = tx.create(Deployment, {
    id,
    jobId,
    serviceId: d.service.id,
    environmentId: d.environment.id,
    tier: d.environment.tier,
    version: d.version,
    status: 'pending',
    initiatedBy: d.initiatedBy,
    requestedBy: d.requestedBy,
    team: d.team,
    config: d.config,
    target: d.environment.target,
    approvalsRequired: d.approvalsRequired,
    approvalTimeoutSeconds: d.approvalTimeoutSeconds,
    idempotencyKey: d.idempotencyKey,
    requestHash: d.requestHash,
    correlationId: d.correlationId,
    kind: d.kind ?? 'deploy',
    rollbackOf: d.rollbackOf ?? null,
    releaseId: d.releaseId ?? null,
    freezeOverride: d.freezeOverride ?? null,
    timeline: [{ status: 'pending', at: now.toISOString(), actor: who.actor }],
    createdAt: now,
    updatedAt: now,
  });
  recordChange(
    tx,
    auditEntry(
      { ...who, at: now },
      {
        action: 'deployment.create',
        outcome: 'success',
        targetType: 'deployment',
        targetId: id,
        team: d.team,
        details: {
          version: d.version,
          tier: d.environment.tier,
          job_id: jobId,
          environment_id: d.environment.id,
          ...(d.kind === 'rollback' ? { kind: 'rollback', rollback_of: d.rollbackOf } : {}),
          ...(d.releaseId ? { release_id: d.releaseId } : {}),
          ...(d.freezeOverride ? { freeze_override: { reason: d.freezeOverride } } : {}),
          ...details,
        },
      },
    ),
    { type: 'deployment', row: created },
  );
  return created;
}

/** A deployment's run input, from its row and its service's and environment's names. */
export function deployInputOf(
  d: Pick<Deployment, 'id' | 'version' | 'team' | 'requestedBy' | 'target' | 'tier'>,
  service: { name: string },
  environment: { name: string },
): DeployInput {
  return {
    deploymentId: d.id,
    service: service.name,
    environment: environment.name,
    tier: d.tier,
    version: d.version,
    team: d.team,
    requestedBy: d.requestedBy,
    target: d.target,
  };
}
