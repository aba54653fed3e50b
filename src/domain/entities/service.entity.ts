import { EntitySchema, OptionalProps } from '@mikro-orm/core';
import { Team } from './team.entity';

/** A registered workload with its ownership tags. */
export class Service {
  [OptionalProps]?: 'tags' | 'teamId' | 'description' | 'createdAt' | 'updatedAt';
  id!: number;
  name!: string;
  tags: Record<string, string> = {};
  /** The owning team's id (a foreign key, mapped to the primary key only). */
  teamId: number | null = null;
  description: string | null = null;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

export const ServiceSchema = new EntitySchema<Service>({
  class: Service,
  tableName: 'service',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    name: { type: 'string', length: 63, unique: true },
    tags: { type: 'json' },
    teamId: { kind: 'm:1', entity: () => Team, mapToPk: true, nullable: true, fieldName: 'team_id' },
    description: { type: 'text', nullable: true },
    createdAt: { type: 'datetime', length: 6 },
    updatedAt: { type: 'datetime', length: 6, onUpdate: () => new Date() },
  },
});
