import type Router from '@koa/router';
import { z } from 'zod';
import { InputError } from '../../domain/errors';
import { EVENT_TYPES } from '../../domain/events';
import { EventFanout } from '../event-stream';
import { route } from '../route';
import { canonicalInt, idParam } from '../schemas';
import type { ApiDeps, AppState } from '../types';

const lastEventId = canonicalInt(Number.MAX_SAFE_INTEGER, '42');

/** The live event stream. */
export function registerEventRoutes(router: Router<AppState>, deps: ApiDeps): EventFanout {
  const fanout = new EventFanout(deps.orm);
  route(
    router,
    deps,
    {
      method: 'get',
      path: '/events',
      tag: 'notifications',
      summary:
        "Live events as Server-Sent Events (id, event, data); a reconnect with Last-Event-ID resumes after it. PLATFORM_ADMIN: all; others: own teams' services",
      query: z.strictObject({
        service: idParam.optional(),
        types: z
          .string()
          .max(1000)
          .transform((s) => s.split(',').map((t) => t.trim()))
          .refine((ts) => ts.every((t) => (EVENT_TYPES as readonly string[]).includes(t)), {
            message: 'an unknown event type',
            params: { hint: `comma-separated event types: ${EVENT_TYPES.join(', ')}` },
          })
          .optional(),
      }),
      responses: { 200: 'text/event-stream', 400: 'an unknown type, or a malformed Last-Event-ID' },
    },
    async (ctx, { query, caller }) => {
      const header = ctx.get('last-event-id');
      const parsed = header === '' ? { success: true as const, data: null } : lastEventId.safeParse(header);
      if (!parsed.success)
        throw new InputError('invalid Last-Event-ID', [
          {
            rule: 'schema',
            field: 'header.Last-Event-ID',
            message: 'not an event id',
            hint: 'send the id of the last event received',
          },
        ]);
      const admin = caller.actor.roles.includes('PLATFORM_ADMIN');
      // better-sse writes the head itself, with the response's status: Koa's default is 404.
      ctx.status = 200;
      ctx.respond = false;
      ctx.req.socket.setTimeout(0);
      ctx.req.socket.setNoDelay(true);
      await fanout.open(
        ctx.req,
        ctx.res,
        {
          teams: admin ? null : caller.actor.teams,
          serviceId: query.service ?? null,
          types: query.types ?? null,
        },
        parsed.data,
      );
    },
  );
  return fanout;
}
