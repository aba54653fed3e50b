import { EntitySchema, OptionalProps } from '@mikro-orm/core';

/** An ownership unit; services belong to at most one team. */
export class Team {
  [OptionalProps]?: 'displayName' | 'createdAt' | 'updatedAt';
  id!: number;
  name!: string;
  displayName: string | null = null;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

export const TeamSchema = new EntitySchema<Team>({
  class: Team,
  tableName: 'team',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    name: { type: 'string', length: 63, unique: true },
    displayName: { type: 'string', length: 200, nullable: true },
    createdAt: { type: 'datetime', length: 6 },
    updatedAt: { type: 'datetime', length: 6, onUpdate: () => new Date() },
  },
});
