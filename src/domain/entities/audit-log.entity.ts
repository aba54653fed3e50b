import { EntitySchema, OptionalProps } from '@mikro-orm/core';
import type { AuditOutcome } from '../lifecycle';

/** One recorded event: who did what to which target, and how it ended. */
export class AuditLog {
  [OptionalProps]?:
    | 'at'
    | 'actorRoles'
    | 'targetId'
    | 'team'
    | 'correlationId'
    | 'details'
    | 'dedupeKey'
    | 'prevHash'
    | 'hash';
  id!: number;
  at: Date = new Date();
  actor!: string;
  actorRoles: string[] = [];
  action!: string;
  outcome!: AuditOutcome;
  targetType!: string;
  targetId: string | null = null;
  team: string | null = null;
  correlationId: string | null = null;
  details: Record<string, unknown> = {};
  /** Set by activities so that a retried activity writes its entry once. */
  dedupeKey: string | null = null;
  /** The chain: the hash of the entry before, and of this entry over it (src/db/audit-chain.ts). */
  prevHash: string | null = null;
  hash: string | null = null;
}

export const AuditLogSchema = new EntitySchema<AuditLog>({
  class: AuditLog,
  tableName: 'audit_log',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    at: { type: 'datetime', length: 6 },
    actor: { type: 'string', length: 255 },
    actorRoles: { type: 'json' },
    action: { type: 'string', length: 63 },
    outcome: { type: 'string', length: 20 },
    targetType: { type: 'string', length: 63 },
    targetId: { type: 'string', length: 255, nullable: true },
    team: { type: 'string', length: 63, nullable: true },
    correlationId: { type: 'string', length: 128, nullable: true },
    details: { type: 'json' },
    dedupeKey: { type: 'string', length: 255, nullable: true, unique: true },
    prevHash: { type: 'string', length: 64, nullable: true },
    hash: { type: 'string', length: 64, nullable: true },
  },
});
