import { EntitySchema, OptionalProps } from '@mikro-orm/core';

/** A persisted guardrail: its kind fixes the shape of `config`. */
export class PlatformPolicy {
  [OptionalProps]?: 'enabled' | 'config' | 'updatedAt' | 'updatedBy';
  name!: string;
  kind!: string;
  enabled = true;
  config: Record<string, unknown> = {};
  updatedAt: Date = new Date();
  updatedBy = 'system';
}

export const PlatformPolicySchema = new EntitySchema<PlatformPolicy>({
  class: PlatformPolicy,
  tableName: 'platform_policy',
  properties: {
    name: { type: 'string', length: 63, primary: true },
    kind: { type: 'string', length: 63 },
    enabled: { type: 'boolean' },
    config: { type: 'json' },
    updatedAt: { type: 'datetime', length: 6 },
    updatedBy: { type: 'string', length: 255 },
  },
});
