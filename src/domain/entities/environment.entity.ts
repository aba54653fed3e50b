import { EntitySchema, OptionalProps } from '@mikro-orm/core';
import type { EnvironmentStatus } from '../lifecycle';
import { DEFAULT_TARGET, type Verification } from '../targets';
import { Service } from './service.entity';

/** A named place a service runs in, of one tier (dev, staging, prod). */
export class Environment {
  [OptionalProps]?:
    'status' | 'config' | 'error' | 'target' | 'verification' | 'externalUrl' | 'createdAt' | 'updatedAt';
  id!: number;
  serviceId!: number;
  name!: string;
  tier!: string;
  status: EnvironmentStatus = 'provisioning';
  config: Record<string, unknown> = {};
  jobId!: string;
  error: string | null = null;
  /** The target its provisioning and deployments go through (a target's name). */
  target: string = DEFAULT_TARGET;
  /** What to probe after a rollout (see src/domain/targets.ts); null: no verification. */
  verification: Verification | null = null;
  /** Where the target says the environment lives (its callback's `external_url`). */
  externalUrl: string | null = null;
  createdBy!: string;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

export const EnvironmentSchema = new EntitySchema<Environment>({
  class: Environment,
  tableName: 'environment',
  uniques: [{ properties: ['serviceId', 'name'] }],
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    serviceId: { kind: 'm:1', entity: () => Service, mapToPk: true, fieldName: 'service_id' },
    name: { type: 'string', length: 63 },
    tier: { type: 'string', length: 63 },
    status: { type: 'string', length: 20 },
    config: { type: 'json' },
    jobId: { type: 'string', length: 255, unique: true },
    error: { type: 'text', nullable: true },
    target: { type: 'string', length: 63 },
    verification: { type: 'json', nullable: true },
    externalUrl: { type: 'text', nullable: true },
    createdBy: { type: 'string', length: 255 },
    createdAt: { type: 'datetime', length: 6 },
    updatedAt: { type: 'datetime', length: 6, onUpdate: () => new Date() },
  },
});
