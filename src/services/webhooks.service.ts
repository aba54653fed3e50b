/**
 * Event webhook subscriptions: made by platform admins (any team, or all) and team admins (their
 * own team), each delivered by a run of its own (see notify.workflow.ts). The signing secret is
 * shown once and kept sealed like a target's.
 */
import { rowsAfter } from '../db/keyset';
import { nextId } from '../db/next-id';
import { Team, WebhookDelivery, WebhookSubscription } from '../domain/entities';
import { InputError, NotFoundError, ServiceUnavailableError } from '../domain/errors';
import { encryptionKey, newSigningSecret, seal } from '../security/secret-box';
import { notifyJobId } from '../workflows/contract';
import { deny, recordIn } from './audit-trail';
import type { Caller } from './caller';
import type { ServiceDeps } from './service-deps';

/** A subscription as created. */
export interface SubscriptionRequest {
  url: string;
  events: string[];
  team?: string | null;
  description?: string;
}

/** The binding of a subscription's sealed secret. */
export const webhookBinding = (id: number): string => `webhook:${id}`;

const isAdmin = (caller: Caller): boolean => caller.actor.roles.includes('PLATFORM_ADMIN');

/** The team a caller's subscription is for: any (or none: all) for admins, an own team for team admins. */
async function teamFor(
  deps: ServiceDeps,
  caller: Caller,
  asked: string | null | undefined,
): Promise<string | null> {
  const facts = { action: 'webhook.create', targetType: 'webhook', team: asked ?? null };
  let team = asked ?? null;
  if (!isAdmin(caller)) {
    if (asked === undefined && caller.actor.teams.length === 1) team = caller.actor.teams[0]!;
    if (team === null)
      throw new InputError('name the team whose events the subscription gets', [
        {
          rule: 'schema',
          field: 'body.team',
          message: 'required for a TEAM_ADMIN',
          hint: 'give one of your teams',
        },
      ]);
    if (!caller.actor.teams.includes(team))
      await deny(deps.orm, caller, facts, `you may not subscribe to the events of team '${team}'`);
  }
  if (team !== null && !(await deps.orm.em.fork().findOne(Team, { name: team })))
    throw new InputError(`team '${team}' does not exist`, [
      {
        rule: 'schema',
        field: 'body.team',
        message: `no team is named '${team}'`,
        hint: 'name a team of GET /api/teams',
      },
    ]);
  return team;
}

/** Creates a subscription and starts its deliveries (events after now); answers it with its secret, shown once. */
export async function createSubscription(
  deps: ServiceDeps,
  caller: Caller,
  body: SubscriptionRequest,
): Promise<{ subscription: WebhookSubscription; secret: string }> {
  const team = await teamFor(deps, caller, body.team);
  if (!deps.config.IDP_ENCRYPTION_KEY)
    throw new ServiceUnavailableError(
      'this API has no IDP_ENCRYPTION_KEY, so it cannot keep signing secrets',
    );
  const key = encryptionKey(deps.config.IDP_ENCRYPTION_KEY);
  const secret = newSigningSecret();
  const subscription = await deps.orm.em.fork().transactional(async (tx) => {
    const id = await nextId(tx, 'webhook_subscription_id_seq');
    const [latest] = await tx
      .getConnection()
      .execute<{ id: string | null }[]>(
        'select max(id) as id from event',
        [],
        'all',
        tx.getTransactionContext(),
      );
    const created = tx.create(WebhookSubscription, {
      id,
      url: body.url,
      events: [...new Set(body.events)],
      team,
      description: body.description ?? null,
      secret: seal(key, webhookBinding(id), secret),
      createdBy: caller.actor.sub,
      cursor: Number(latest?.id ?? 0),
      jobId: notifyJobId(id),
    });
    recordIn(tx, caller, {
      action: 'webhook.create',
      outcome: 'success',
      targetType: 'webhook',
      targetId: id,
      team,
      details: { url: body.url, events: created.events },
    });
    return created;
  });
  await deps.jobs.start(
    subscription.jobId,
    {
      kind: 'notification',
      input: { subscriptionId: subscription.id, team },
      summary: `Deliver ${subscription.events.join(', ')} events${team ? ` of team ${team}` : ''} to ${body.url}`,
    },
    caller.correlationId,
  );
  return { subscription, secret };
}

/** The subscriptions a caller may see: all for admins, own teams' for team admins. */
const scopeOf = (caller: Caller) => (isAdmin(caller) ? {} : { team: { $in: [...caller.actor.teams] } });

/** A page of the caller's subscriptions (not deleted), oldest first. */
export function listSubscriptions(
  deps: ServiceDeps,
  caller: Caller,
  page: { limit: number; after?: number },
): Promise<WebhookSubscription[]> {
  return rowsAfter(deps.orm.em.fork(), WebhookSubscription, 'id', page, {
    deletedAt: null,
    ...scopeOf(caller),
  });
}

/** A subscription the caller may manage, or 404 (one of another team: 403, audited). */
async function mine(
  deps: ServiceDeps,
  caller: Caller,
  id: number,
  action: string,
): Promise<WebhookSubscription> {
  const sub = await deps.orm.em.fork().findOne(WebhookSubscription, { id, deletedAt: null });
  if (!sub) throw new NotFoundError(`webhook ${id} does not exist`);
  if (!isAdmin(caller) && (sub.team === null || !caller.actor.teams.includes(sub.team)))
    await deny(
      deps.orm,
      caller,
      { action, targetType: 'webhook', targetId: id, team: sub.team },
      'this subscription is not of your team',
    );
  return sub;
}

/** Deletes a subscription: its pending deliveries stop. */
export async function deleteSubscription(deps: ServiceDeps, caller: Caller, id: number): Promise<void> {
  const sub = await mine(deps, caller, id, 'webhook.delete');
  await deps.orm.em.fork().transactional(async (tx) => {
    const row = await tx.findOneOrFail(WebhookSubscription, sub.id);
    row.deletedAt = new Date();
    recordIn(tx, caller, {
      action: 'webhook.delete',
      outcome: 'success',
      targetType: 'webhook',
      targetId: id,
      team: sub.team,
    });
  });
  await deps.jobs.cancel(sub.jobId);
}

/** A page of a subscription's delivery attempts, newest first. */
export async function listDeliveries(
  deps: ServiceDeps,
  caller: Caller,
  id: number,
  page: { limit: number; before?: number },
): Promise<WebhookDelivery[]> {
  await mine(deps, caller, id, 'webhook.read');
  return deps.orm.em
    .fork()
    .find(
      WebhookDelivery,
      { subscriptionId: id, ...(page.before ? { id: { $lt: page.before } } : {}) },
      { orderBy: { id: 'desc' }, limit: page.limit + 1 },
    );
}
