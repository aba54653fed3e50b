import { EntitySchema, OptionalProps } from '@mikro-orm/core';
import { Deployment } from './deployment.entity';

/** One approver's decision on a deployment; one per approver. */
export class Approval {
  [OptionalProps]?: 'comment' | 'at';
  id!: number;
  deploymentId!: number;
  approver!: string;
  decision!: 'approve' | 'reject';
  comment: string | null = null;
  at: Date = new Date();
}

export const ApprovalSchema = new EntitySchema<Approval>({
  class: Approval,
  tableName: 'approval',
  uniques: [{ properties: ['deploymentId', 'approver'] }],
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    deploymentId: { kind: 'm:1', entity: () => Deployment, mapToPk: true, fieldName: 'deployment_id' },
    approver: { type: 'string', length: 255 },
    decision: { type: 'string', length: 10 },
    comment: { type: 'text', nullable: true },
    at: { type: 'datetime', length: 6 },
  },
});
