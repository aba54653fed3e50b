/**
 * The audit entries of requests: changes (written in the change's own transaction), refusals
 * (written on their own, since the change is never made) and guardrail violations. Entries are
 * built by the lifecycle module's rule, with the caller as the actor.
 */
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { recordChange, type Subject } from '../db/changes';
import { Deployment, Service, Team } from '../domain/entities';
import { GuardrailError, NotAllowedError, type Violation } from '../domain/errors';
import { auditEntry, type AuditFacts } from '../domain/lifecycle';
import type { PolicySet } from '../domain/policies';
import { redactRestricted } from '../domain/restricted-keys';
import { authFailures, guardrailViolations } from '../metrics';
import type { Caller } from './caller';

/** The caller as the actor of an audit entry. */
export const byCaller = (caller: Pick<Caller, 'actor' | 'correlationId'>) => ({
  actor: caller.actor.sub,
  actorRoles: caller.actor.roles,
  correlationId: caller.correlationId,
});

/** Records the caller's audit entry in `em`'s transaction: it commits with the change it records. */
export function recordIn(em: EntityManager, caller: Caller, facts: AuditFacts, subject?: Subject): void {
  recordChange(em, auditEntry(byCaller(caller), facts), subject);
}

/** Writes the caller's audit entry on its own (a refusal, or a request whose change is elsewhere). */
export async function recordAlone(orm: MikroORM, caller: Caller, facts: AuditFacts): Promise<void> {
  const em = orm.em.fork();
  recordIn(em, caller, facts);
  await em.flush();
}

/** What a refusal's audit entry says beside its outcome. */
export type RefusalFacts = Omit<AuditFacts, 'outcome'>;

/** Audits a refusal, counts it and throws 403. */
export async function deny(
  orm: MikroORM,
  caller: Caller,
  facts: RefusalFacts,
  message: string,
): Promise<never> {
  authFailures.inc({ status: '403', reason: facts.action });
  await recordAlone(orm, caller, {
    ...facts,
    outcome: 'denied',
    details: { ...facts.details, reason: message },
  });
  throw new NotAllowedError(message);
}

/**
 * Audits guardrail violations with what was attempted (restricted values redacted), counts each rule
 * and throws 400 with every violation. Returns without a word when there are none.
 */
export async function refuseViolations(
  orm: MikroORM,
  caller: Caller,
  facts: RefusalFacts,
  violations: Violation[],
  attempted: unknown,
  policies: PolicySet,
): Promise<void> {
  if (violations.length === 0) return;
  for (const v of violations) guardrailViolations.inc({ rule: v.rule, action: facts.action });
  const patterns = policies.restrictedKeys.flatMap((p) => p.patterns);
  await recordAlone(orm, caller, {
    ...facts,
    outcome: 'violation',
    details: { ...facts.details, attempted: redactRestricted(attempted, patterns), violations },
  });
  throw new GuardrailError(`the request breaks ${violations.length} guardrail rule(s)`, violations);
}

/**
 * The team a target belongs to, for the audit entry of a refusal made before the target was loaded
 * (so the team's admins see attempts on their team's things); null when it has none or is not found.
 */
export async function teamOfTarget(orm: MikroORM, targetType: string, id: number): Promise<string | null> {
  const em = orm.em.fork();
  const teamName = async (teamId: number | null | undefined) =>
    teamId ? ((await em.findOne(Team, teamId))?.name ?? null) : null;
  switch (targetType) {
    case 'team':
      return teamName(id);
    case 'service':
      return teamName((await em.findOne(Service, id))?.teamId);
    case 'deployment':
      return (await em.findOne(Deployment, id))?.team ?? null;
    default:
      return null;
  }
}

export { isUniqueViolation } from '../db/errors';
