export * from './team.entity';
export * from './service.entity';
export * from './environment.entity';
export * from './deployment.entity';
export * from './approval.entity';
export * from './platform-policy.entity';
export * from './audit-log.entity';
export * from './target.entity';
export * from './job-output.entity';
export * from './callback-receipt.entity';
export * from './release.entity';
export * from './event.entity';
export * from './webhook.entity';
import { ApprovalSchema } from './approval.entity';
import { AuditLogSchema } from './audit-log.entity';
import { DeploymentSchema } from './deployment.entity';
import { EnvironmentSchema } from './environment.entity';
import { PlatformPolicySchema } from './platform-policy.entity';
import { ServiceSchema } from './service.entity';
import { TeamSchema } from './team.entity';
import { TargetSchema } from './target.entity';
import { JobOutputSchema } from './job-output.entity';
import { CallbackReceiptSchema } from './callback-receipt.entity';
import { ReleaseSchema } from './release.entity';
import { AuditChainHeadSchema, PlatformEventSchema } from './event.entity';
import { WebhookDeliverySchema, WebhookSubscriptionSchema } from './webhook.entity';

/** Every entity schema, for the ORM's discovery. */
export const ENTITY_SCHEMAS = [
  TeamSchema,
  ServiceSchema,
  EnvironmentSchema,
  DeploymentSchema,
  ApprovalSchema,
  PlatformPolicySchema,
  AuditLogSchema,
  TargetSchema,
  JobOutputSchema,
  CallbackReceiptSchema,
  ReleaseSchema,
  PlatformEventSchema,
  AuditChainHeadSchema,
  WebhookSubscriptionSchema,
  WebhookDeliverySchema,
];
