import type Router from '@koa/router';
import { z } from 'zod';
import {
  createSubscription,
  deleteSubscription,
  listDeliveries,
  listSubscriptions,
} from '../../services/webhooks.service';
import { deliveryJson, webhookJson } from '../../views/resources';
import { decodeCursor, pageQuery, toPage } from '../pagination';
import { route } from '../route';
import { idParam, webhookCreate } from '../schemas';
import type { ApiDeps, AppState } from '../types';

const ADMINS = ['PLATFORM_ADMIN', 'TEAM_ADMIN'] as const;

/** Event webhooks: subscriptions of platform admins (any team, or all) and team admins (own team). */
export function registerWebhookRoutes(router: Router<AppState>, deps: ApiDeps): void {
  route(
    router,
    deps,
    {
      method: 'post',
      path: '/webhooks',
      access: { roles: ADMINS, action: 'webhook.create', targetType: 'webhook' },
      tag: 'notifications',
      summary:
        'Subscribe a URL to events (signed deliveries, retried for 24 h); the answer holds the signing secret, once',
      body: webhookCreate,
      responses: {
        201: 'the subscription, with signing_secret',
        400: 'a non-http(s) URL, an unknown event type, an unknown team',
        403: 'a team the TEAM_ADMIN does not belong to, or a DEVELOPER',
      },
    },
    async (ctx, { body, caller }) => {
      const { subscription, secret } = await createSubscription(deps, caller, body);
      ctx.status = 201;
      ctx.body = { ...webhookJson(subscription), signing_secret: secret };
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/webhooks',
      access: { roles: ADMINS, action: 'webhook.read', targetType: 'webhook' },
      tag: 'notifications',
      summary: "Subscriptions (PLATFORM_ADMIN: all; TEAM_ADMIN: own teams')",
      query: z.strictObject(pageQuery),
      responses: { 200: 'a page of subscriptions', 403: 'DEVELOPER' },
    },
    async (ctx, { query, caller }) => {
      const rows = await listSubscriptions(deps, caller, {
        limit: query.limit,
        after: decodeCursor(query.cursor),
      });
      ctx.body = toPage(rows, query.limit, webhookJson);
    },
  );

  route(
    router,
    deps,
    {
      method: 'delete',
      path: '/webhooks/:id',
      access: { roles: ADMINS, action: 'webhook.delete', targetType: 'webhook' },
      tag: 'notifications',
      summary: 'Delete a subscription: its pending deliveries stop',
      params: z.strictObject({ id: idParam }),
      responses: { 204: 'deleted', 403: 'not of your team', 404: 'no such subscription' },
    },
    async (ctx, { params, caller }) => {
      await deleteSubscription(deps, caller, params.id);
      ctx.status = 204;
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/webhooks/:id/deliveries',
      access: { roles: ADMINS, action: 'webhook.read', targetType: 'webhook' },
      tag: 'notifications',
      summary: "A subscription's delivery attempts, newest first",
      params: z.strictObject({ id: idParam }),
      query: z.strictObject(pageQuery),
      responses: { 200: 'a page of delivery attempts', 403: 'not of your team', 404: 'no such subscription' },
    },
    async (ctx, { params, query, caller }) => {
      const rows = await listDeliveries(deps, caller, params.id, {
        limit: query.limit,
        before: decodeCursor(query.cursor),
      });
      ctx.body = toPage(rows, query.limit, deliveryJson);
    },
  );
}
