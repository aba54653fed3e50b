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

// Connection exceptions (08…, except 08P01 protocol_violation: a statement the server refused, a
// bug, not an outage), admin/crash shutdowns (57P01-57P03), insufficient resources (53…).
const PG_UNAVAILABLE = /^(08(?!P01)|57P0|53)/;
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

/**
 * True when `err` means a dependency (PostgreSQL, Temporal) is down rather than a bug: connection
 * errors, pool timeouts, PostgreSQL admin shutdowns, gRPC UNAVAILABLE/DEADLINE_EXCEEDED.
 */
export function isUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const o = e as { code?: unknown; name?: string; message?: string };
    if (typeof o.code === 'string' && (NET_CODES.has(o.code) || PG_UNAVAILABLE.test(o.code))) return true;
    // gRPC status codes: 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED.
    if (o.name === 'ServiceError' || o.name === 'ConnectionError' || o.code === 14 || o.code === 4) return true;
    if (typeof o.message === 'string' && /Knex: Timeout acquiring a connection|Connection terminated|connect ECONNREFUSED|Failed to connect/i.test(o.message)) return true;
  }
  return false;
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
 * documents with their status; 4xx errors from Koa keep their status and message; a down dependency
 * is 503; anything else is a logged 500 whose body says nothing internal.
 */
export const errorHandler: Middleware<AppState> = async (ctx, next) => {
  try {
    await next();
    if (ctx.status === 404 && ctx.body === undefined) {
      writeProblem(ctx, 404, 'not-found', `no route for ${ctx.method} ${ctx.path}`);
    } else if (ctx.status === 405 && (ctx.body === undefined || typeof ctx.body === 'string')) {
      writeProblem(ctx, 405, 'method-not-allowed', `${ctx.method} is not allowed on ${ctx.path}`);
    }
  } catch (err) {
    const mapped = DOMAIN_STATUS.find(([cls]) => err instanceof cls);
    if (mapped && err instanceof DomainError) {
      const [, status, slug] = mapped;
      const violations = err instanceof InputError && err.violations.length > 0 ? { violations: err.violations } : {};
      writeProblem(ctx, status, slug, err.message, {
        ...violations,
        ...err.extra,
      });
      if (status >= 500) ctx.state.log.warn({ err: { name: err.name, message: err.message } }, 'dependency unavailable');
      return;
    }
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const message = (err as { expose?: boolean; message?: string }).expose !== false ? (err as Error).message : TITLES[status];
      writeProblem(ctx, status, status === 401 ? 'unauthenticated' : 'invalid-request', message ?? 'bad request');
      return;
    }
    if (isUnavailable(err)) {
      ctx.state.log.warn({ err }, 'dependency unavailable');
      writeProblem(ctx, 503, 'service-unavailable', 'a dependency of the platform is unavailable; retry later');
      ctx.set('Retry-After', '5');
      return;
    }
    ctx.state.log.error({ err }, 'unhandled error');
    writeProblem(ctx, 500, 'internal-error', 'an internal error occurred; quote the correlation id when reporting it');
  }
};
