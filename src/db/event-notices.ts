/**
 * New events, as PostgreSQL tells them: one connection per process LISTENs on the events channel
 * (every commit that wrote events NOTIFYs it with its last event id), and anyone in the process may
 * wait for the next notice. No table is polled in a tight loop; waiters also wake on a timeout, so
 * a notice lost with a dropped connection costs at most that long.
 */
import { EventEmitter } from 'node:events';
import { Client } from 'pg';
import { forgetPolicies } from '../domain/deployment-rules';
import { EVENTS_CHANNEL } from './changes';

/** The channel a policy change NOTIFYs (the payload is the policy's name). */
export const POLICIES_CHANNEL = 'idp_policies';

const RECONNECT_MS = 2000;

/** A process-wide listener on one database. */
export class EventNotices {
  private readonly emitter = new EventEmitter();
  private client: Client | undefined;
  private connecting: Promise<void> | undefined;
  private closed = false;
  /** The highest event id a notice named so far. */
  latest = 0;

  constructor(private readonly url: string) {
    this.emitter.setMaxListeners(0);
  }

  /** Starts listening (again, after a lost connection); safe to call often. */
  start(): Promise<void> {
    if (this.client || this.closed) return Promise.resolve();
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connect(): Promise<void> {
    const client = new Client({ connectionString: this.url });
    const lost = (): void => {
      forgetPolicies();
      if (this.client === client) this.client = undefined;
      client.end().catch(() => undefined);
      if (!this.closed) setTimeout(() => void this.start().catch(() => undefined), RECONNECT_MS).unref();
      this.emitter.emit('notice');
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => {
      if (n.channel === POLICIES_CHANNEL) return forgetPolicies();
      const id = Number(n.payload);
      if (Number.isFinite(id) && id > this.latest) this.latest = id;
      this.emitter.emit('notice');
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}`);
      await client.query(`LISTEN ${POLICIES_CHANNEL}`);
      this.client = client;
      // Whatever changed while nobody listened is read again, and readers look for what they missed.
      forgetPolicies();
      this.emitter.emit('notice');
    } catch {
      lost();
    }
  }

  /** Calls `fn` on every notice (and when the connection is lost); returns how to stop. */
  subscribe(fn: () => void): () => void {
    void this.start().catch(() => undefined);
    this.emitter.on('notice', fn);
    return () => this.emitter.off('notice', fn);
  }

  /** Resolves at the next notice, after `ms`, or when `signal` aborts, whichever comes first. */
  next(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        stop();
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      const stop = this.subscribe(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}

const byUrl = new Map<string, EventNotices>();

/** The listener of this process on `url`. */
export function eventNotices(url: string): EventNotices {
  let notices = byUrl.get(url);
  if (!notices) byUrl.set(url, (notices = new EventNotices(url)));
  return notices;
}

/** Stops this process's listener on `url`, if any (a test dropping its database). */
export async function closeEventNotices(url: string): Promise<void> {
  const notices = byUrl.get(url);
  byUrl.delete(url);
  await notices?.close();
}
