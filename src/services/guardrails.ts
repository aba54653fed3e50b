/**
 * One evaluation of the guardrails per action, used by every write and by the dry run
 * (`POST /api/policies/evaluate`), so the two can never disagree.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { promotionViolation } from '../domain/deployment-rules';
import type { Violation } from '../domain/errors';
import {
  evaluateDeploymentConfig,
  evaluateEnvironment,
  evaluateServiceTags,
  type PolicySet,
} from '../domain/policies';

/** What a guarded action proposes, with what the rules need to know of its target. */
export type GuardedChange =
  | { action: 'service.create' | 'service.update'; tags: Record<string, unknown> }
  | { action: 'environment.create'; tier: string; config?: Record<string, unknown> }
  | { action: 'target.create' | 'target.update'; config: Record<string, unknown> }
  | {
      action: 'deployment.create';
      version: string;
      config?: Record<string, unknown>;
      /** The environment deployed to; without it the promotion order is not checked (a dry run may omit it). */
      target?: { serviceId: number; tier: string };
    };

/** Every guardrail violation of `change` under `policies` (empty when it may go ahead). */
export async function evaluate(
  em: EntityManager,
  policies: PolicySet,
  change: GuardedChange,
): Promise<Violation[]> {
  switch (change.action) {
    case 'service.create':
    case 'service.update':
      return evaluateServiceTags(change.tags, policies);
    case 'environment.create':
      return evaluateEnvironment(change, policies);
    case 'target.create':
    case 'target.update':
      // A target's config is platform config too: no secrets in it.
      return evaluateDeploymentConfig(change.config, policies);
    case 'deployment.create': {
      const violations = evaluateDeploymentConfig(change.config, policies);
      const order = change.target
        ? await promotionViolation(em, policies, change.target.serviceId, change.target.tier, change.version)
        : null;
      return order ? [...violations, order] : violations;
    }
  }
}
