import type { IncomingMessage } from 'node:http';
import type { Middleware } from 'koa';
import {
  AuthenticationError,
  ConflictError,
  DomainError,
  GuardrailError,
  InputError,
  NotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  type Violation,
} from '../domain/errors';
import { isUnavailable } from '../unavailable';
import { MAX_BODY_BYTES } from './middleware';
import type { AppState } from './types';

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  correlation_id: string;
  violations?: Violation[];
  [extra: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

const DOMAIN_STATUS: [new (...args: never[]) => DomainError, number, string][] = [
  [PayloadTooLargeError, 413, 'payload-too-large'],
  [GuardrailError, 400, 'guardrail-violation'],
  [InputError, 400, 'invalid-request'],
  [AuthenticationError, 401, 'unauthenticated'],
  [NotAllowedError, 403, 'forbidden'],
  [NotFoundError, 404, 'not-found'],
  [ConflictError, 409, 'conflict'],
  [ServiceUnavailableError, 503, 'service-unavailable'],
];

// How Node reports a client's connection closing under a request: the request stream's 'aborted'
// (ECONNRESET), a reset or broken socket, a stream closed early, or llhttp's parse error when the
// connection ends mid-message (HPE_INVALID_EOF_STATE).
const CLIENT_GONE_CODES = new Set(['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE']);

/**
 * True when `err` is the client closing or resetting its own connection under the request `req`,
 * not a dependency going down: the code says "connection" and this request's stream or socket is
 * the one that is gone (so no answer can reach anyone either).
 */
export function isClientAbort(err: unknown, req: IncomingMessage): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !(CLIENT_GONE_CODES.has(code) || code.startsWith('HPE_'))) return false;
  return req.readableAborted || req.socket?.destroyed === true;
}

/** Writes an RFC 9457 problem document. */
export function writeProblem(
  ctx: Parameters<Middleware<AppState>>[0],
  status: number,
  slug: string,
  detail: string,
  extra: Partial<Problem> = {},
): void {
  const body: Problem = {
    type: `/problems/${slug}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    correlation_id: ctx.state.correlationId,
    ...extra,
  };
  ctx.status = status;
  ctx.type = 'application/problem+json';
  ctx.body = body;
}

/**
 * The one error middleware, first in the chain after the correlation id: domain errors become problem
 * documents with their status; 4xx errors from Koa keep their status and message; a client that
 * closed its connection mid-body is a 400 (which rarely reaches it) and no error; a down dependency
 * is 503; anything else is a logged 500 whose body says nothing internal.
 */
export const errorHandler: Middleware<AppState> = async (ctx, next) => {
  // Koa reports a socket's error (a client closing mid-body: llhttp's parse error, a reset) through
  // ctx.onerror to the app's 'error' event, whose default prints a plain-text stack to stderr. A
  // client that went away is no error of ours: the request line already says so.
  const report = ctx.onerror;
  ctx.onerror = (err) => {
    if (err && isClientAbort(err, ctx.req)) return;
    report.call(ctx, err);
  };
  try {
    await next();
    if (ctx.status === 404 && ctx.body === undefined) {
      writeProblem(ctx, 404, 'not-found', `no route for ${ctx.method} ${ctx.path}`);
    } else if (ctx.status === 405 && (ctx.body === undefined || typeof ctx.body === 'string')) {
      writeProblem(ctx, 405, 'method-not-allowed', `${ctx.method} is not allowed on ${ctx.path}`);
    }
  } catch (caught) {
    // A refusal sent before a large declared body was read (no token, a role the route does not
    // admit): Node would read and discard all of it to keep the connection; close it instead.
    if (!ctx.req.readableEnded && Number(ctx.get('content-length') || 0) > MAX_BODY_BYTES)
      ctx.set('Connection', 'close');
    // Only while the body was still coming: a reset PostgreSQL connection after a client that had
    // sent everything hung up is still an outage.
    const err =
      isClientAbort(caught, ctx.req) && !ctx.req.complete
        ? new InputError('the client closed the connection before the whole body arrived', [
            {
              rule: 'json',
              field: 'body',
              message: 'the body is incomplete',
              hint: 'send the whole body the Content-Length announces, and wait for the answer',
            },
          ])
        : caught;
    const mapped = DOMAIN_STATUS.find(([cls]) => err instanceof cls);
    if (mapped && err instanceof DomainError) {
      const [, status, slug] = mapped;
      const violations =
        err instanceof InputError && err.violations.length > 0 ? { violations: err.violations } : {};
      writeProblem(ctx, status, slug, err.message, {
        ...violations,
        ...err.extra,
      });
      if (status >= 500)
        ctx.state.log.warn({ err: { name: err.name, message: err.message } }, 'dependency unavailable');
      return;
    }
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const message =
        (err as { expose?: boolean; message?: string }).expose !== false
          ? (err as Error).message
          : TITLES[status];
      writeProblem(
        ctx,
        status,
        status === 401 ? 'unauthenticated' : 'invalid-request',
        message ?? 'bad request',
      );
      return;
    }
    if (isUnavailable(err)) {
      ctx.state.log.warn({ err }, 'dependency unavailable');
      writeProblem(
        ctx,
        503,
        'service-unavailable',
        'a dependency of the platform is unavailable; retry later',
      );
      ctx.set('Retry-After', '5');
      return;
    }
    ctx.state.log.error({ err }, 'unhandled error');
    writeProblem(
      ctx,
      500,
      'internal-error',
      'an internal error occurred; quote the correlation id when reporting it',
    );
  }
};
