import type { Logger } from 'pino';
import type { Actor } from '../domain/types';

/** Who asks, and the request they ask in: all a use case knows of HTTP. */
export interface Caller {
  actor: Actor;
  correlationId: string;
  log: Logger;
}
