import { EntitySchema, OptionalProps } from '@mikro-orm/core';
import type { ReleaseStatus } from '../lifecycle';
import { Service } from './service.entity';

/** One environment of a stage: its deployment once made, or the job it waits for. */
export interface StageDeployment {
  environment_id: number;
  environment: string;
  deployment_id: number | null;
  status: string;
  /** The job holding the environment, while the stage waits for it. */
  waiting_for?: string | null;
}

/** One stage of a release: a tier, deployed to every environment of that tier at once. */
export interface ReleaseStage {
  tier: string;
  status: 'pending' | 'soaking' | 'in_progress' | 'succeeded' | 'failed' | 'cancelled';
  deployments: StageDeployment[];
  /** When the soak before this stage ends (a promotion gate on the tier before). */
  soak_until: string | null;
  /** When the stage ended (its last deployment did). */
  finished_at?: string | null;
}

/** One version promoted through the tiers by one workflow (`jobId`). */
export class Release {
  [OptionalProps]?:
    | 'status'
    | 'config'
    | 'description'
    | 'team'
    | 'idempotencyKey'
    | 'requestHash'
    | 'error'
    | 'freezeOverride'
    | 'createdAt'
    | 'updatedAt'
    | 'finishedAt';
  id!: number;
  jobId!: string;
  serviceId!: number;
  version!: string;
  config: Record<string, unknown> = {};
  through!: string;
  description: string | null = null;
  status: ReleaseStatus = 'pending';
  stages!: ReleaseStage[];
  requestedBy!: string;
  team: string | null = null;
  idempotencyKey: string | null = null;
  requestHash: string | null = null;
  correlationId!: string;
  error: string | null = null;
  freezeOverride: string | null = null;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
  finishedAt: Date | null = null;
}

export const ReleaseSchema = new EntitySchema<Release>({
  class: Release,
  tableName: 'release',
  uniques: [{ properties: ['serviceId', 'idempotencyKey'] }],
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    jobId: { type: 'string', length: 255, unique: true },
    serviceId: { kind: 'm:1', entity: () => Service, mapToPk: true, fieldName: 'service_id' },
    version: { type: 'string', length: 128 },
    config: { type: 'json' },
    through: { type: 'string', length: 63 },
    description: { type: 'text', nullable: true },
    status: { type: 'string', length: 20 },
    stages: { type: 'json' },
    requestedBy: { type: 'string', length: 255 },
    team: { type: 'string', length: 63, nullable: true },
    idempotencyKey: { type: 'string', length: 255, nullable: true },
    requestHash: { type: 'string', length: 64, nullable: true },
    correlationId: { type: 'string', length: 128 },
    error: { type: 'text', nullable: true },
    freezeOverride: { type: 'text', nullable: true },
    createdAt: { type: 'datetime', length: 6 },
    updatedAt: { type: 'datetime', length: 6, onUpdate: () => new Date() },
    finishedAt: { type: 'datetime', length: 6, nullable: true },
  },
});
