import { BigIntType, EntitySchema, OptionalProps } from '@mikro-orm/core';

/** An event webhook subscription: where, which events, for which team (null: all). */
export class WebhookSubscription {
  [OptionalProps]?: 'description' | 'createdAt' | 'deletedAt' | 'cursor';
  id!: number;
  url!: string;
  events!: string[];
  team!: string | null;
  description: string | null = null;
  /** The signing secret, sealed (src/security/secret-box.ts). */
  secret!: string;
  createdBy!: string;
  createdAt: Date = new Date();
  deletedAt: Date | null = null;
  /** The last event handed over (delivered, or given up on after 24 h): deliveries go on after it. */
  cursor = 0;
  jobId!: string;
}

export const WebhookSubscriptionSchema = new EntitySchema<WebhookSubscription>({
  class: WebhookSubscription,
  tableName: 'webhook_subscription',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    url: { type: 'text' },
    events: { type: 'json' },
    team: { type: 'string', length: 63, nullable: true },
    description: { type: 'text', nullable: true },
    secret: { type: 'text' },
    createdBy: { type: 'string', length: 255 },
    createdAt: { type: 'datetime', length: 6 },
    deletedAt: { type: 'datetime', length: 6, nullable: true },
    cursor: { type: new BigIntType('number') },
    jobId: { type: 'string', length: 255, unique: true },
  },
});

/** One attempt to deliver an event to a subscription (the delivery log). */
export class WebhookDelivery {
  id!: number;
  subscriptionId!: number;
  eventId!: number;
  type!: string;
  attempt!: number;
  statusCode!: number | null;
  error!: string | null;
  at!: Date;
}

export const WebhookDeliverySchema = new EntitySchema<WebhookDelivery>({
  class: WebhookDelivery,
  tableName: 'webhook_delivery',
  properties: {
    id: { type: new BigIntType('number'), primary: true, autoincrement: true },
    subscriptionId: { type: 'integer' },
    eventId: { type: new BigIntType('number') },
    type: { type: 'string', length: 63 },
    attempt: { type: 'integer' },
    statusCode: { type: 'integer', nullable: true },
    error: { type: 'text', nullable: true },
    at: { type: 'datetime', length: 6 },
  },
});
