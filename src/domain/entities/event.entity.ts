import { BigIntType, EntitySchema } from '@mikro-orm/core';

/** A state change as people are told about it; ids sort in commit order (see src/db/changes.ts). */
export class PlatformEvent {
  id!: number;
  type!: string;
  at!: Date;
  team!: string | null;
  serviceId!: number | null;
  resourceType!: string;
  resourceId!: number;
  /** The resource as the API showed it when the change was committed. */
  data!: Record<string, unknown>;
}

export const PlatformEventSchema = new EntitySchema<PlatformEvent>({
  class: PlatformEvent,
  tableName: 'event',
  properties: {
    id: { type: new BigIntType('number'), primary: true },
    type: { type: 'string', length: 63 },
    at: { type: 'datetime', length: 6 },
    team: { type: 'string', length: 63, nullable: true },
    serviceId: { type: 'integer', nullable: true },
    resourceType: { type: 'string', length: 63 },
    resourceId: { type: 'integer' },
    data: { type: 'json' },
  },
});

/** The head of the audit chain: the hash of the last chained entry (one row; its lock orders commits). */
export class AuditChainHead {
  id!: number;
  lastHash!: string;
  /** The first entry of the chain (entries written before the chain began are not in it). */
  firstChainedId!: number;
}

export const AuditChainHeadSchema = new EntitySchema<AuditChainHead>({
  class: AuditChainHead,
  tableName: 'audit_chain_head',
  properties: {
    id: { type: 'integer', primary: true },
    lastHash: { type: 'string', length: 64 },
    firstChainedId: { type: new BigIntType('number') },
  },
});
