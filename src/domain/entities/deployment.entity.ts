import { EntitySchema, OptionalProps } from '@mikro-orm/core';
import type { DeploymentStatus, TimelineEntry } from '../lifecycle';
import { DEFAULT_TARGET } from '../targets';
import { Environment } from './environment.entity';
import { Service } from './service.entity';

/** What a deployment is: a rollout of a version, or a rollback to one that ran there before. */
export type DeploymentKind = 'deploy' | 'rollback';

/** The promotion of one version into one environment, run by one workflow (`jobId`). */
export class Deployment {
  [OptionalProps]?:
    | 'status'
    | 'initiatedBy'
    | 'team'
    | 'config'
    | 'approvalsRequired'
    | 'approvalTimeoutSeconds'
    | 'idempotencyKey'
    | 'requestHash'
    | 'timeline'
    | 'error'
    | 'target'
    | 'externalUrl'
    | 'kind'
    | 'rollbackOf'
    | 'rolledBackBy'
    | 'releaseId'
    | 'freezeOverride'
    | 'createdAt'
    | 'updatedAt'
    | 'finishedAt';
  id!: number;
  jobId!: string;
  serviceId!: number;
  environmentId!: number;
  tier!: string;
  version!: string;
  status: DeploymentStatus = 'pending';
  initiatedBy: string | null = null;
  requestedBy!: string;
  /** The owning team's name when the deployment was requested (for scoping approvals and audit). */
  team: string | null = null;
  config: Record<string, unknown> = {};
  approvalsRequired = 0;
  approvalTimeoutSeconds = 0;
  idempotencyKey: string | null = null;
  requestHash: string | null = null;
  correlationId!: string;
  timeline: TimelineEntry[] = [];
  error: string | null = null;
  /** The target the deployment goes through: its environment's when it was triggered. */
  target: string = DEFAULT_TARGET;
  /** Where the target says the rollout can be seen (its callback's `external_url`). */
  externalUrl: string | null = null;
  /** `deploy`, or `rollback` (to a version that succeeded in the environment before). */
  kind: DeploymentKind = 'deploy';
  /** For a rollback: the deployment it replaces. */
  rollbackOf: number | null = null;
  /** The rollback that replaced this deployment, once one was started. */
  rolledBackBy: number | null = null;
  /** The release this deployment is a stage of. */
  releaseId: number | null = null;
  /** A PLATFORM_ADMIN's reason for deploying through a deploy freeze. */
  freezeOverride: string | null = null;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
  finishedAt: Date | null = null;
}

export const DeploymentSchema = new EntitySchema<Deployment>({
  class: Deployment,
  tableName: 'deployment',
  uniques: [{ properties: ['environmentId', 'idempotencyKey'] }],
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    jobId: { type: 'string', length: 255, unique: true },
    serviceId: { kind: 'm:1', entity: () => Service, mapToPk: true, fieldName: 'service_id' },
    environmentId: { kind: 'm:1', entity: () => Environment, mapToPk: true, fieldName: 'environment_id' },
    tier: { type: 'string', length: 63 },
    version: { type: 'string', length: 128 },
    status: { type: 'string', length: 20 },
    initiatedBy: { type: 'string', length: 255, nullable: true },
    requestedBy: { type: 'string', length: 255 },
    team: { type: 'string', length: 63, nullable: true },
    config: { type: 'json' },
    approvalsRequired: { type: 'integer' },
    approvalTimeoutSeconds: { type: 'integer' },
    idempotencyKey: { type: 'string', length: 255, nullable: true },
    requestHash: { type: 'string', length: 64, nullable: true },
    correlationId: { type: 'string', length: 128 },
    timeline: { type: 'json' },
    error: { type: 'text', nullable: true },
    target: { type: 'string', length: 63 },
    externalUrl: { type: 'text', nullable: true },
    kind: { type: 'string', length: 20 },
    rollbackOf: { type: 'integer', nullable: true },
    rolledBackBy: { type: 'integer', nullable: true },
    releaseId: { type: 'integer', nullable: true },
    freezeOverride: { type: 'text', nullable: true },
    createdAt: { type: 'datetime', length: 6 },
    updatedAt: { type: 'datetime', length: 6, onUpdate: () => new Date() },
    finishedAt: { type: 'datetime', length: 6, nullable: true },
  },
});
