/**
 * Delivery targets: created, changed and their secrets rotated by platform admins, read by anyone.
 * The signing secret is made here, shown once (in the answer of the create or the rotation), and
 * kept sealed under `IDP_ENCRYPTION_KEY`; it never reaches a log line or an audit entry.
 */
import { LockMode } from '@mikro-orm/postgresql';
import { rowsAfter } from '../db/keyset';
import { Target } from '../domain/entities';
import { ConflictError, NotFoundError, ServiceUnavailableError } from '../domain/errors';
import { loadPolicies } from '../domain/deployment-rules';
import { canManageTargets } from '../domain/rbac';
import { TARGET_CONFIG_SCHEMAS, type TargetKind } from '../domain/targets';
import { parseOrRefuse } from '../domain/violations';
import { encryptionKey, newSigningSecret, open, seal } from '../security/secret-box';
import { deny, isUniqueViolation, recordIn, refuseViolations } from './audit-trail';
import type { Caller } from './caller';
import { evaluate } from './guardrails';
import type { ServiceDeps } from './service-deps';

/** How long a rotated-out secret still verifies callbacks. */
export const ROTATION_OVERLAP_MS = 60 * 60 * 1000;

/** A target as created: its kind and its config (checked for its kind here). */
export interface TargetRequest {
  name: string;
  kind: TargetKind;
  config: Record<string, unknown>;
  description?: string | null;
}

const binding = (name: string): string => `target:${name}`;

function keyOf(deps: ServiceDeps): Buffer {
  if (!deps.config.IDP_ENCRYPTION_KEY)
    throw new ServiceUnavailableError(
      'this API has no IDP_ENCRYPTION_KEY, so it cannot keep signing secrets',
    );
  return encryptionKey(deps.config.IDP_ENCRYPTION_KEY);
}

/** Refuses a caller who may not manage targets (403, audited). */
async function mustManage(deps: ServiceDeps, caller: Caller, action: string, name: string): Promise<void> {
  if (!canManageTargets(caller.actor))
    await deny(
      deps.orm,
      caller,
      { action, targetType: 'target', targetId: name },
      'only PLATFORM_ADMIN may manage targets',
    );
}

/**
 * Refuses a config that holds restricted keys (400, audited; first, so a secret in the config is
 * named as such even where the kind takes no such key), then one not of its kind's shape (400
 * naming `body.config.…`); answers the config as the kind's schema reads it.
 */
async function guard(
  deps: ServiceDeps,
  caller: Caller,
  action: 'target.create' | 'target.update',
  name: string,
  kind: TargetKind,
  config: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const em = deps.orm.em.fork();
  const policies = await loadPolicies(em);
  await refuseViolations(
    deps.orm,
    caller,
    { action, targetType: 'target', targetId: name },
    await evaluate(em, policies, { action, config }),
    { config },
    policies,
  );
  return parseOrRefuse(TARGET_CONFIG_SCHEMAS[kind], config, 'body.config');
}

/** Creates a target with a new signing secret; answers the target and the secret (shown this once). */
export async function createTarget(
  deps: ServiceDeps,
  caller: Caller,
  body: TargetRequest,
): Promise<{ target: Target; secret: string }> {
  await mustManage(deps, caller, 'target.create', body.name);
  const config = await guard(deps, caller, 'target.create', body.name, body.kind, body.config);
  const secret = newSigningSecret();
  const em = deps.orm.em.fork();
  const target = em.create(Target, {
    name: body.name,
    kind: body.kind,
    config,
    description: body.description ?? null,
    secret: seal(keyOf(deps), binding(body.name), secret),
  });
  recordIn(em, caller, {
    action: 'target.create',
    outcome: 'success',
    targetType: 'target',
    targetId: body.name,
    details: { kind: body.kind, config },
  });
  try {
    await em.flush();
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError(`a target named '${body.name}' exists`);
    throw err;
  }
  return { target, secret };
}

/** A page of targets in creation order. */
export function listTargets(deps: ServiceDeps, page: { limit: number; after?: number }): Promise<Target[]> {
  return rowsAfter(deps.orm.em.fork(), Target, 'id', page);
}

/** A target by name, or 404. */
export async function getTarget(deps: ServiceDeps, name: string): Promise<Target> {
  const target = await deps.orm.em.fork().findOne(Target, { name });
  if (!target) throw new NotFoundError(`target '${name}' does not exist`);
  return target;
}

/** Changes a target's config (checked for its kind) and description; applies to jobs started afterwards. */
export async function patchTarget(
  deps: ServiceDeps,
  caller: Caller,
  name: string,
  change: { config?: Record<string, unknown>; description?: string | null },
): Promise<Target> {
  await mustManage(deps, caller, 'target.update', name);
  const em = deps.orm.em.fork();
  const target = await em.findOne(Target, { name });
  if (!target) throw new NotFoundError(`target '${name}' does not exist`);
  const config =
    change.config && (await guard(deps, caller, 'target.update', name, target.kind, change.config));
  const before = { config: target.config, description: target.description };
  if (config) target.config = config;
  if (change.description !== undefined) target.description = change.description;
  recordIn(em, caller, {
    action: 'target.update',
    outcome: 'success',
    targetType: 'target',
    targetId: name,
    details: { before, after: { config: target.config, description: target.description } },
  });
  await em.flush();
  return target;
}

/** Replaces a target's secret; the old one still verifies callbacks for an hour. */
export async function rotateSecret(
  deps: ServiceDeps,
  caller: Caller,
  name: string,
): Promise<{ target: Target; secret: string }> {
  await mustManage(deps, caller, 'target.rotate_secret', name);
  const key = keyOf(deps);
  const secret = newSigningSecret();
  const target = await deps.orm.em.fork().transactional(async (em) => {
    const t = await em.findOne(Target, { name }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!t) throw new NotFoundError(`target '${name}' does not exist`);
    const until = new Date(Date.now() + ROTATION_OVERLAP_MS);
    t.previousSecret = t.secret;
    t.previousSecretUntil = t.secret ? until : null;
    t.secret = seal(key, binding(name), secret);
    recordIn(em, caller, {
      action: 'target.rotate_secret',
      outcome: 'success',
      targetType: 'target',
      targetId: name,
      details: { previous_valid_until: t.previousSecretUntil?.toISOString() ?? null },
    });
    return t;
  });
  return { target, secret };
}

/** The secrets that verify a callback of `target` now: the current one, and the previous within its hour. */
export function verifyingSecrets(deps: ServiceDeps, target: Target, now = new Date()): string[] {
  const key = keyOf(deps);
  const secrets: string[] = [];
  if (target.secret) secrets.push(open(key, binding(target.name), target.secret));
  if (target.previousSecret && target.previousSecretUntil && target.previousSecretUntil > now)
    secrets.push(open(key, binding(target.name), target.previousSecret));
  return secrets;
}
