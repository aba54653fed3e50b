import { randomUUID } from 'node:crypto';
import type { Middleware, ParameterizedContext } from 'koa';
import type { Logger } from 'pino';
import { InputError, PayloadTooLargeError, type Violation } from '../domain/errors';
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
      {
        method: ctx.method,
        path: ctx.path,
        status: ctx.status,
        duration_ms: Math.round(ms * 10) / 10,
        actor: ctx.state.actor?.sub,
        // The one line a client that hung up mid-body leaves (see isClientAbort).
        ...(ctx.req.readableAborted ? { client_aborted: true } : {}),
      },
      'request',
    );
  };
}

// The methods the API serves; Node parses 34, and each unknown one (PROPFIND, MKCOL…) would add a
// series per route and status to every scrape.
const SERVED_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);

/**
 * Observes request durations labelled by the matched route template (never the raw path) and the
 * method, any method the API does not serve counted as `other`.
 */
export const metrics: Middleware<AppState> = async (ctx, next) => {
  const end = httpDuration.startTimer();
  try {
    await next();
  } finally {
    const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
    end({
      method: SERVED_METHODS.has(ctx.method) ? ctx.method : 'other',
      route: String(route),
      status: String(ctx.status),
    });
  }
};

/**
 * Characters PostgreSQL stores in neither text nor jsonb: NUL, and UTF-16 surrogates that are not
 * part of a pair (JSON can spell them: `"\ud800"`). In text they would turn into U+FFFD, in jsonb
 * and in query literals they fail the statement: input carrying them is refused instead.
 */
export const UNSTORABLE = /\u0000|\p{Cs}/u;

/**
 * Keys refused at any depth of a body and in query keys: assigning `__proto__` sets an object's
 * prototype instead of a property, so the schemas (which rebuild objects) dropped such a key
 * without a word, and `constructor`/`prototype` are the other half of a prototype-pollution path.
 */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Bodies larger than this get 413. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Bodies nested deeper than this are refused (no route takes more than a few levels plus config's 32). */
export const MAX_BODY_DEPTH = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A node of the parsed body still to look at, with the way back to the root for naming it. */
interface Pending {
  value: unknown;
  key: string | number | null;
  parent: Pending | null;
  depth: number;
}

const pathOf = (node: Pending): string => {
  let path = '';
  for (let n: Pending | null = node; n && n.key !== null; n = n.parent)
    path = (typeof n.key === 'number' ? `[${n.key}]` : `.${n.key}`) + path;
  return `body${path}`;
};

/**
 * What JSON can say but the platform cannot keep as said, found by one walk of the parsed body (a
 * loop, not recursion: a 1 MiB body can be nested half a million levels deep): keys that would be
 * dropped (see {@link FORBIDDEN_KEYS}), numbers beyond a double (`1e400` parses as Infinity and was
 * stored as null), strings and keys PostgreSQL cannot store (see {@link UNSTORABLE}). Each violation
 * names the field; at most 20 are listed.
 */
function bodyViolations(body: unknown): Violation[] {
  const violations: Violation[] = [];
  const add = (field: string, message: string, hint: string): void => {
    violations.push({ rule: 'json', field, message, hint });
  };
  const stack: Pending[] = [{ value: body, key: null, parent: null, depth: 0 }];
  while (stack.length > 0 && violations.length < 20) {
    const node = stack.pop()!;
    const { value } = node;
    if (typeof value === 'number' && !Number.isFinite(value)) {
      add(
        pathOf(node),
        'the number is too large to be represented (it would be stored as null)',
        'send a number between -1.7e308 and 1.7e308',
      );
    } else if (typeof value === 'string' && UNSTORABLE.test(value)) {
      add(
        pathOf(node),
        'strings may contain neither \\u0000 nor unpaired surrogates',
        'remove NUL characters and send well-formed Unicode text',
      );
    } else if (value !== null && typeof value === 'object') {
      if (node.depth >= MAX_BODY_DEPTH) {
        add(
          pathOf(node),
          `the body is nested more than ${MAX_BODY_DEPTH} levels deep`,
          'send a flatter document',
        );
        continue;
      }
      const entries: [string | number, unknown][] = Array.isArray(value)
        ? value.map((v, i) => [i, v])
        : Object.entries(value);
      // Reversed onto the stack so violations come out in document order.
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i]!;
        const next: Pending = { value: child, key, parent: node, depth: node.depth + 1 };
        if (typeof key === 'string' && FORBIDDEN_KEYS.has(key)) {
          add(
            pathOf(next),
            `the key '${key}' is not accepted anywhere in a body`,
            `rename or remove '${key}'`,
          );
        } else if (typeof key === 'string' && UNSTORABLE.test(key)) {
          add(
            pathOf(next),
            'keys may contain neither \\u0000 nor unpaired surrogates',
            'remove NUL characters and send well-formed Unicode text',
          );
        } else {
          stack.push(next);
        }
      }
    }
  }
  return violations;
}

/**
 * Reads the whole request body, or fails with 413 past {@link MAX_BODY_BYTES}. A client that closes
 * the connection mid-body fails the read with Node's 'aborted' (ECONNRESET): the error handler
 * answers that as the client's doing (see `isClientAbort`), not as an outage.
 */
async function readBody(req: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new PayloadTooLargeError(`the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads the request's body as bytes (at most {@link MAX_BODY_BYTES}): for routes that verify a signature over it. */
export async function readRawBody(ctx: ParameterizedContext<AppState>): Promise<Buffer> {
  const declared = Number(ctx.get('content-length') || '0');
  if (declared > MAX_BODY_BYTES)
    throw new PayloadTooLargeError(`the body is larger than ${MAX_BODY_BYTES} bytes`);
  return readBody(ctx.req as AsyncIterable<Buffer>);
}

/**
 * Reads the request's body and parses it as JSON whatever the Content-Type says (the seed's curl
 * examples send none): strict UTF-8, at most {@link MAX_BODY_BYTES}, and nothing the platform
 * could not keep as sent (see `bodyViolations`). Undefined for an empty body or a method without
 * one. Called by the route layer once the caller is known to be admitted, so a refused caller
 * never makes the API buffer or parse a body.
 */
export async function readJsonBody(ctx: ParameterizedContext<AppState>): Promise<unknown> {
  if (!['POST', 'PUT', 'PATCH', 'DELETE'].includes(ctx.method)) return undefined;
  const declared = Number(ctx.get('content-length') || '0');
  if (declared > MAX_BODY_BYTES)
    throw new PayloadTooLargeError(`the body is larger than ${MAX_BODY_BYTES} bytes`);
  const bytes = await readBody(ctx.req as AsyncIterable<Buffer>);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new InputError('the body is not valid UTF-8', [
      {
        rule: 'json',
        field: 'body',
        message: 'the body contains bytes that are not UTF-8',
        hint: 'encode the body as UTF-8 (RFC 8259 requires it for JSON)',
      },
    ]);
  }
  if (text.trim() === '') return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new InputError('the body is not valid JSON', [
      {
        rule: 'json',
        field: 'body',
        message: 'the body could not be parsed as JSON',
        hint: 'send a JSON object, e.g. {"name": "payments"}',
      },
    ]);
  }
  const violations = bodyViolations(body);
  if (violations.length > 0)
    throw new InputError('the body contains values the platform cannot keep as sent', violations);
  return body;
}
