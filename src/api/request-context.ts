import { AsyncLocalStorage } from 'node:async_hooks';

/** Per-request values that code far from the Koa context needs (the Temporal client's interceptor). */
export interface RequestContext {
  correlationId: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

/** The correlation id of the request being served, if any. */
export const currentCorrelationId = (): string | undefined => requestContext.getStore()?.correlationId;
