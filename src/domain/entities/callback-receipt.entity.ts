import { EntitySchema, OptionalProps } from '@mikro-orm/core';

/** A target's callback the API handed to its job's run: one per target and `webhook-id`. */
export class CallbackReceipt {
  [OptionalProps]?: 'receivedAt';
  id!: number;
  target!: string;
  jobId!: string;
  webhookId!: string;
  status!: string;
  receivedAt: Date = new Date();
}

export const CallbackReceiptSchema = new EntitySchema<CallbackReceipt>({
  class: CallbackReceipt,
  tableName: 'callback_receipt',
  uniques: [{ properties: ['target', 'webhookId'] }],
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    target: { type: 'string', length: 63 },
    jobId: { type: 'string', length: 255 },
    webhookId: { type: 'string', length: 255 },
    status: { type: 'string', length: 20 },
    receivedAt: { type: 'datetime', length: 6 },
  },
});
