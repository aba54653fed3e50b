/**
 * Event deliveries (see notify.workflow.ts): a pump delivers a subscription's events — signed
 * (Standard Webhooks, `webhook-id` the event's id on every attempt), each retried with exponential
 * backoff (1 s, doubling, at most 60 s apart) for up to 24 h — and logs every attempt. The events of
 * one resource (a deployment, a release, an environment) go out one after another in id order; up to
 * {@link LANES} resources' events go out at once, so one HTTP round trip per event does not bound a
 * subscription's throughput (in the soak, sequential delivery fell 15–27 s behind at 33 events/s).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import type { EntityManager } from '@mikro-orm/postgresql';
import { eventNotices } from '../db/event-notices';
import { WebhookSubscription } from '../domain/entities';
import { deliveryLag, webhookDeliveries } from '../metrics';
import { open } from '../security/secret-box';
import type { ActivityDeps } from './activity-deps';
import { signedHeaders, REQUEST_TIMEOUT_MS } from './delivery/webhook-sender';
import { activityLogger, keepBeating } from './run-context';

/** How long one pump delivers before it hands back to its run. */
export const PUMP_MS = 4 * 60_000;
/** How long an event is retried before it is given up on. */
export const GIVE_UP_MS = 24 * 3600_000;
const BATCH = 100;
/** How many resources' events one subscription delivers at once. */
export const LANES = 8;
/** The log line of an event given up on. */
const GIVEN_UP = 'given up after 24 h of retries';

interface EventRow {
  id: string;
  type: string;
  at: Date;
  data: unknown;
  resource_type: string;
  resource_id: string;
  /** Attempts already logged for this subscription (a pump resumed after a pause or a crash). */
  attempts: string;
  /** Delivered (or given up) already, ahead of the cursor: a pump stopped before it moved the cursor. */
  finished: boolean;
}

function query<T>(em: EntityManager, sql: string, params: unknown[]): Promise<T[]> {
  return em.getConnection().execute(sql, params as never[], 'all') as Promise<T[]>;
}

/** The backoff before attempt `n + 1`: 1 s, doubling, at most 60 s. */
export const backoffMs = (n: number): number => Math.min(60_000, 1000 * 2 ** Math.max(0, n - 1));

/** The notification activities. */
export function notificationActivities({
  orm,
  logger,
  delivery,
}: Pick<ActivityDeps, 'orm' | 'logger' | 'delivery'>) {
  const em = () => orm.em.fork();
  const notices = () => eventNotices(String(orm.config.get('clientUrl')));

  const nextEvents = (sub: WebhookSubscription): Promise<EventRow[]> =>
    query<EventRow>(
      em(),
      `select e.id, e.type, e.at, e.data, e.resource_type, e.resource_id, l.attempts, l.finished
       from event e cross join lateral (
         select count(*) as attempts,
                coalesce(bool_or(d.status_code between 200 and 299 or d.error = ?), false) as finished
         from webhook_delivery d where d.subscription_id = ? and d.event_id = e.id) l
       where e.id > ?
         and (? or e.type in (select jsonb_array_elements_text(?::jsonb)))
         and (?::text is null or e.team = ?::text)
       order by e.id limit ?`,
      [
        GIVEN_UP,
        sub.id,
        sub.cursor,
        sub.events.includes('*'),
        JSON.stringify(sub.events),
        sub.team,
        sub.team,
        BATCH,
      ],
    );

  const log = (
    sub: WebhookSubscription,
    ev: EventRow,
    attempt: number,
    status: number | null,
    error: string | null,
  ) =>
    query(
      em(),
      'insert into webhook_delivery (subscription_id, event_id, type, attempt, status_code, error, at) values (?, ?, ?, ?, ?, ?, now())',
      [sub.id, ev.id, ev.type, attempt, status, error],
    );

  /** One attempt: null when delivered (2xx), else what went wrong; the attempt is logged either way. */
  async function attempt(
    sub: WebhookSubscription,
    secret: string,
    ev: EventRow,
    n: number,
    signal: AbortSignal,
  ) {
    const payload = JSON.stringify({
      id: Number(ev.id),
      type: ev.type,
      at: new Date(ev.at).toISOString(),
      data: ev.data,
    });
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(sub.url, {
        method: 'POST',
        headers: signedHeaders(secret, String(ev.id), payload),
        body: payload,
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      });
      await res.body?.cancel();
      status = res.status;
      if (res.status < 200 || res.status >= 300) error = `answered ${res.status}`;
    } catch (err) {
      if (signal.aborted) throw err;
      const e = err as { name?: string; message?: string; cause?: { code?: string } };
      error =
        e?.name === 'TimeoutError'
          ? `no answer within ${REQUEST_TIMEOUT_MS / 1000}s`
          : (e?.cause?.code ?? e?.message ?? String(err));
    }
    await log(sub, ev, n, status, error);
    return error;
  }

  /** Delivers one event (retrying); 'paused' when the pump's time is up before it could. */
  async function deliverOne(
    sub: WebhookSubscription,
    secret: string,
    ev: EventRow,
    until: number,
    signal: AbortSignal,
  ) {
    let n = Number(ev.attempts);
    // An event is retried for 24 h from when it happened: a receiver back after a long outage gets
    // each old event once more, not a day each.
    const first = new Date(ev.at).getTime();
    for (;;) {
      n += 1;
      const error = await attempt(sub, secret, ev, n, signal);
      if (error === null) {
        webhookDeliveries.inc({ outcome: 'delivered' });
        deliveryLag.observe((Date.now() - new Date(ev.at).getTime()) / 1000);
        return 'delivered' as const;
      }
      if (Date.now() - first >= GIVE_UP_MS) {
        webhookDeliveries.inc({ outcome: 'failed' });
        await log(sub, ev, n, null, GIVEN_UP);
        return 'given_up' as const;
      }
      webhookDeliveries.inc({ outcome: 'retried' });
      const wait = backoffMs(n);
      if (Date.now() + wait > until) return 'paused' as const;
      await sleep(wait, undefined, { signal });
      const still = await em().findOne(WebhookSubscription, { id: sub.id, deletedAt: null });
      if (!still) return 'deleted' as const;
    }
  }

  /**
   * Delivers a batch: each resource's events in order, {@link LANES} resources at once. Returns the
   * ids delivered or given up on, and why it stopped early: `paused` (a resource's next retry falls
   * after the pump's time; its later events wait with it) or `deleted`.
   */
  async function deliverBatch(
    sub: WebhookSubscription,
    secret: string,
    batch: EventRow[],
    until: number,
    signal: AbortSignal,
  ): Promise<{ finished: Set<string>; stop: 'paused' | 'deleted' | null }> {
    const finished = new Set(batch.filter((ev) => ev.finished).map((ev) => ev.id));
    const byResource = new Map<string, EventRow[]>();
    for (const ev of batch) {
      if (finished.has(ev.id)) continue;
      const key = `${ev.resource_type}:${ev.resource_id}`;
      byResource.set(key, [...(byResource.get(key) ?? []), ev]);
    }
    const queue = [...byResource.values()];
    const stopAll = new AbortController();
    const lanesSignal = AbortSignal.any([signal, stopAll.signal]);
    let stop: 'paused' | 'deleted' | null = null;
    const lane = async () => {
      for (let events = queue.shift(); events && !lanesSignal.aborted; events = queue.shift()) {
        for (const ev of events) {
          const outcome = await deliverOne(sub, secret, ev, until, lanesSignal);
          if (outcome === 'delivered' || outcome === 'given_up') {
            finished.add(ev.id);
            continue;
          }
          if (outcome === 'deleted') {
            stop = 'deleted';
            stopAll.abort();
            return;
          }
          stop ??= 'paused';
          break;
        }
      }
    };
    const settled = await Promise.allSettled(
      Array.from({ length: Math.min(LANES, queue.length) }, () =>
        lane().catch((err: unknown) => {
          stopAll.abort();
          throw err;
        }),
      ),
    );
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // A lane stopped because the subscription was deleted is not an error; anything else is.
    if (failed && (signal.aborted || stop !== 'deleted')) throw failed.reason;
    return { finished, stop };
  }

  return {
    /**
     * Delivers the subscription's events after its cursor for up to {@link PUMP_MS};
     * `deleted` when the subscription is gone (its run then ends).
     */
    async pumpDeliveries(subscriptionId: number): Promise<{ deleted: boolean }> {
      const ctx = Context.current();
      const signal = ctx.cancellationSignal;
      const until = Date.now() + PUMP_MS;
      let cursor = 0;
      const stop = keepBeating(() => ({ cursor }));
      try {
        while (Date.now() < until && !signal.aborted) {
          const sub = await em().findOne(WebhookSubscription, { id: subscriptionId, deletedAt: null });
          if (!sub) return { deleted: true };
          cursor = sub.cursor;
          const secret = open(delivery.encryptionKey!, `webhook:${sub.id}`, sub.secret);
          const batch = await nextEvents(sub);
          if (batch.length === 0) {
            await notices().next(Math.min(5000, Math.max(0, until - Date.now())), signal);
            continue;
          }
          const { finished, stop } = await deliverBatch(sub, secret, batch, until, signal);
          // The cursor moves past the events done without a gap; those done beyond a gap are
          // skipped by the next batch (their log says so), never sent twice.
          let done = cursor;
          for (const ev of batch) {
            if (!finished.has(ev.id)) break;
            done = Number(ev.id);
          }
          if (done > cursor) {
            await query(em(), 'update webhook_subscription set cursor = ? where id = ? and cursor < ?', [
              done,
              sub.id,
              done,
            ]);
            cursor = done;
          }
          if (stop === 'deleted') return { deleted: true };
          if (stop === 'paused') return { deleted: false };
        }
        return { deleted: false };
      } catch (err) {
        if (!signal.aborted)
          activityLogger(logger).warn({ err, subscription_id: subscriptionId }, 'deliveries paused');
        throw err;
      } finally {
        stop();
      }
    },
  };
}
