import { AsyncLocalStorage } from 'node:async_hooks';

/** The correlation id of the activity running now, set by the worker's activity interceptor. */
export const activityCorrelation = new AsyncLocalStorage<string>();
