import { EntitySchema, OptionalProps } from '@mikro-orm/core';
import type { TargetKind } from '../targets';

/** Where an environment's work is sent: a kind and its config, and the secret that signs both ways. */
export class Target {
  [OptionalProps]?:
    'description' | 'secret' | 'previousSecret' | 'previousSecretUntil' | 'createdAt' | 'updatedAt';
  id!: number;
  name!: string;
  kind!: TargetKind;
  config: Record<string, unknown> = {};
  description: string | null = null;
  /** The signing secret, sealed (src/security/secret-box.ts); null for the seeded simulated target. */
  secret: string | null = null;
  /** The secret before the last rotation, sealed: it still verifies callbacks until `previousSecretUntil`. */
  previousSecret: string | null = null;
  previousSecretUntil: Date | null = null;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

export const TargetSchema = new EntitySchema<Target>({
  class: Target,
  tableName: 'target',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    name: { type: 'string', length: 63, unique: true },
    kind: { type: 'string', length: 20 },
    config: { type: 'json' },
    description: { type: 'text', nullable: true },
    secret: { type: 'text', nullable: true },
    previousSecret: { type: 'text', nullable: true },
    previousSecretUntil: { type: 'datetime', length: 6, nullable: true },
    createdAt: { type: 'datetime', length: 6 },
    updatedAt: { type: 'datetime', length: 6, onUpdate: () => new Date() },
  },
});
