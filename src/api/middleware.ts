import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { InputError, PayloadTooLargeError } from '../domain/errors';
import { httpDuration } from '../metrics';
import { requestContext } from './request-context';
import type { AppState } from './types';

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Takes the caller's `X-Correlation-Id` (or `X-Request-Id`) when it is well-formed, else a new UUID;
 * echoes it, gives the request a child logger carrying it, and keeps it in the async context for
 * the Temporal client. One log line per request when it ends.
 */
export function correlation(logger: Logger): Middleware<AppState> {
  return async (ctx, next) => {
    const offered = ctx.get('x-correlation-id') || ctx.get('x-request-id');
    const id = CORRELATION_ID.test(offered) ? offered : randomUUID();
    ctx.state.correlationId = id;
    ctx.state.log = logger.child({ correlation_id: id });
    ctx.set('X-Correlation-Id', id);
    const started = process.hrtime.bigint();
    await requestContext.run({ correlationId: id }, next);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    ctx.state.log.info(
      { method: ctx.method, path: ctx.path, status: ctx.status, duration_ms: Math.round(ms * 10) / 10, actor: ctx.state.actor?.sub },
      'request',
    );
  };
}

/** Observes request durations labelled by the matched route template (never the raw path). */
export const metrics: Middleware<AppState> = async (ctx, next) => {
  const end = httpDuration.startTimer();
  try {
    await next();
  } finally {
    const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
    end({ method: ctx.method, route: String(route), status: String(ctx.status) });
  }
};

/**
 * Characters PostgreSQL stores in neither text nor jsonb: NUL, and UTF-16 surrogates that are not
 * part of a pair (JSON can spell them: `"\ud800"`). In text they would turn into U+FFFD, in jsonb
 * and in query literals they fail the statement: input carrying them is refused instead.
 */
export const UNSTORABLE = /\u0000|\p{Cs}/u;

/** Bodies larger than this get 413. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Reads the body and parses it as JSON whatever the Content-Type says (the seed's curl examples
 * send none). Empty bodies leave `ctx.state.body` undefined.
 */
export const jsonBody: Middleware<AppState> = async (ctx, next) => {
  if (!['POST', 'PUT', 'PATCH', 'DELETE'].includes(ctx.method)) return next();
  const declared = Number(ctx.get('content-length') || '0');
  if (declared > MAX_BODY_BYTES) throw new PayloadTooLargeError(`the body is larger than ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new PayloadTooLargeError(`the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() !== '') {
    let unstorable = false;
    try {
      // Refused here instead of failing (or being altered) at write time: see UNSTORABLE.
      ctx.state.body = JSON.parse(text, (key, value: unknown) => {
        if (UNSTORABLE.test(key) || (typeof value === 'string' && UNSTORABLE.test(value))) unstorable = true;
        return value;
      });
    } catch {
      throw new InputError('the body is not valid JSON', [
        { rule: 'json', field: 'body', message: 'the body could not be parsed as JSON', hint: 'send a JSON object, e.g. {"name": "payments"}' },
      ]);
    }
    if (unstorable) {
      throw new InputError('the body contains a NUL character or an unpaired surrogate', [
        { rule: 'json', field: 'body', message: 'strings and keys may contain neither \\u0000 nor unpaired surrogates', hint: 'remove NUL characters and send well-formed Unicode text' },
      ]);
    }
  }
  return next();
};
