import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { AuditLog } from '../domain/entities';
import { GuardrailError, InputError, NotAllowedError, type Violation } from '../domain/errors';
import { redactRestricted, type PolicySet } from '../domain/policies';
import { authFailures, guardrailViolations } from '../metrics';
import type { Ctx } from './route';
import type { AppDeps } from './types';

/** `?limit=&cursor=` of every list. */
export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
};

/** Positive integer path ids. */
export const idParam = z.coerce.number().int().min(1).max(2_147_483_647);

/** Decodes a keyset cursor (the last id seen) or fails with 400. */
export function decodeCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { id?: unknown };
    if (typeof value.id === 'number' && Number.isInteger(value.id) && value.id > 0) return value.id;
  } catch {
    // fall through to the 400 below
  }
  throw new InputError('invalid cursor', [
    { rule: 'schema', field: 'query.cursor', message: 'not a cursor this API issued', hint: 'pass next_cursor from the previous page unchanged' },
  ]);
}

/** Builds a page from `limit + 1` rows fetched in key order. */
export function toPage<T extends { id: number }, R>(rows: T[], limit: number, serialize: (row: T) => R) {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items: items.map(serialize),
    next_cursor: rows.length > limit && last ? Buffer.from(JSON.stringify({ id: last.id })).toString('base64url') : null,
  };
}


/** What an audit entry says beside who and when. */
export interface AuditFacts {
  action: string;
  outcome: AuditLog['outcome'];
  targetType: string;
  targetId?: string | number | null;
  team?: string | null;
  details?: Record<string, unknown>;
}

/** Adds an audit entry for the current request to `em`'s unit of work (it commits with the change). */
export function audit(em: EntityManager, ctx: Ctx, facts: AuditFacts): void {
  const actor = ctx.state.actor;
  em.create(AuditLog, {
    at: new Date(),
    actor: actor?.sub ?? 'anonymous',
    actorRoles: actor?.roles ?? [],
    action: facts.action,
    outcome: facts.outcome,
    targetType: facts.targetType,
    targetId: facts.targetId === undefined || facts.targetId === null ? null : String(facts.targetId),
    team: facts.team ?? null,
    correlationId: ctx.state.correlationId,
    details: facts.details ?? {},
    dedupeKey: null,
  });
}

/** Writes an audit entry on its own (for refusals, whose change is never made). */
export async function auditAlone(deps: AppDeps, ctx: Ctx, facts: AuditFacts): Promise<void> {
  const em = deps.orm.em.fork();
  audit(em, ctx, facts);
  await em.flush();
}

/** Audits a refusal, counts it and throws 403. */
export async function deny(deps: AppDeps, ctx: Ctx, facts: Omit<AuditFacts, 'outcome'>, message: string): Promise<never> {
  authFailures.inc({ status: '403', reason: facts.action });
  await auditAlone(deps, ctx, { ...facts, outcome: 'denied', details: { ...facts.details, reason: message } });
  throw new NotAllowedError(message);
}

/**
 * Audits guardrail violations with what was attempted (restricted values redacted), counts each rule
 * and throws 400 with every violation.
 */
export async function refuse(
  deps: AppDeps,
  ctx: Ctx,
  facts: Omit<AuditFacts, 'outcome'>,
  violations: Violation[],
  attempted: unknown,
  policies: PolicySet,
): Promise<never> {
  for (const v of violations) guardrailViolations.inc({ rule: v.rule, action: facts.action });
  const patterns = policies.restrictedKeys.flatMap((p) => p.patterns);
  await auditAlone(deps, ctx, {
    ...facts,
    outcome: 'violation',
    details: { ...facts.details, attempted: redactRestricted(attempted, patterns), violations },
  });
  throw new GuardrailError(`the request breaks ${violations.length} guardrail rule(s)`, violations);
}

/** True for PostgreSQL's unique_violation, as MikroORM or the pg driver reports it. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { name?: string; code?: string };
  return e?.name === 'UniqueConstraintViolationException' || e?.code === '23505';
}

/** The constraint a unique violation names, when it says. */
export function violatedConstraint(err: unknown): string | undefined {
  const e = err as { constraint?: string; message?: string };
  return e.constraint ?? /constraint "([^"]+)"/.exec(e.message ?? '')?.[1];
}
