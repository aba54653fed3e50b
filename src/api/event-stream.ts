/**
 * Live events (`GET /api/events`) as Server-Sent Events, written by `better-sse`: one fan-out per
 * API process reads each new event once (woken by PostgreSQL's NOTIFY, see src/db/event-notices.ts)
 * and offers it to every open stream, which keeps what its caller may see and asked for. A stream
 * first replays what it missed (after `Last-Event-ID`) from the table, then goes live. A client that
 * stops reading is cut off once its socket holds {@link MAX_UNREAD_BYTES}: memory stays bounded, and
 * it resumes where it was with `Last-Event-ID`.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import { createSession, type Session } from 'better-sse';
import type { ServerResponse } from 'node:http';
import { eventNotices } from '../db/event-notices';
import { sseStreams } from '../metrics';

/** What a stream may hold unread in its socket before it is cut off. */
export const MAX_UNREAD_BYTES = 1024 * 1024;
/** What a stream may hold back while it replays what it missed, before it is cut off. */
const MAX_HELD_EVENTS = 10_000;
const PAGE = 500;
/** The comment line that keeps proxies from closing an idle stream. */
export const KEEP_ALIVE_MS = 15_000;

/** An event as the table keeps it. */
export interface EventRow {
  id: string;
  type: string;
  at: Date;
  team: string | null;
  service_id: number | null;
  data: unknown;
}

/** What a stream shows: its caller's teams (null: all) and the filters it asked for. */
export interface StreamFilter {
  teams: readonly string[] | null;
  serviceId: number | null;
  types: readonly string[] | null;
}

const admits = (f: StreamFilter, e: EventRow): boolean =>
  (f.teams === null || (e.team !== null && f.teams.includes(e.team))) &&
  (f.serviceId === null || e.service_id === f.serviceId) &&
  (f.types === null || f.types.includes(e.type));

const twice = <T>(v: T): [T, T] => [v, v];

/** One open stream. */
class Stream {
  private held: EventRow[] | null = [];
  constructor(
    private readonly session: Session,
    private readonly res: ServerResponse,
    readonly filter: StreamFilter,
    public lastSent: number,
  ) {}

  /** Sends `e` if the stream shows it and has not sent it yet (held while the stream replays). */
  offer(e: EventRow): void {
    if (this.held) {
      this.held.push(e);
      if (this.held.length > MAX_HELD_EVENTS) this.cut();
      return;
    }
    this.send(e);
  }

  send(e: EventRow): void {
    const id = Number(e.id);
    if (id <= this.lastSent || !admits(this.filter, e) || !this.session.isConnected) return;
    if (this.res.writableLength > MAX_UNREAD_BYTES) return this.cut();
    this.session.push(
      { id, type: e.type, at: new Date(e.at).toISOString(), data: e.data },
      e.type,
      String(id),
    );
    this.lastSent = id;
  }

  /** Ends the replay: what was held while it ran goes out, in order, without repeats. */
  live(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const e of held) this.send(e);
  }

  cut(): void {
    this.held = null;
    this.res.destroy();
  }
}

/** The process's fan-out of new events to its open streams. */
export class EventFanout {
  private readonly streams = new Set<Stream>();
  private last = -1;
  private reading: Promise<void> | null = null;
  private again = false;
  private stopNotices: (() => void) | null = null;

  constructor(private readonly orm: MikroORM) {}

  private query(sql: string, params: unknown[]): Promise<EventRow[]> {
    return this.orm.em.getConnection().execute(sql, params as never[], 'all') as Promise<EventRow[]>;
  }

  /** Reads the events after the last one offered and offers them; one read at a time, again if woken meanwhile. */
  private wake = (): void => {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        for (;;) {
          const rows = await this.query(
            'select id, type, at, team, service_id, data from event where id > ? order by id limit ?',
            [this.last, PAGE],
          ).catch(() => []);
          for (const row of rows) {
            for (const s of this.streams) s.offer(row);
            this.last = Number(row.id);
          }
          if (rows.length < PAGE) break;
        }
      } while (this.again);
    })().finally(() => (this.reading = null));
  };

  private async ensureStarted(): Promise<void> {
    if (this.stopNotices) return;
    if (this.last < 0) {
      const [row] = await this.query('select coalesce(max(id), 0) as id from event', []);
      this.last = Number(row?.id ?? 0);
    }
    this.stopNotices = eventNotices(String(this.orm.config.get('clientUrl'))).subscribe(this.wake);
  }

  /**
   * Serves a stream on `req`/`res` (the caller has answered nothing yet): replays the events after
   * `after` that `filter` admits (none without `after`: a new stream starts now), then sends new ones
   * as they are committed, until the client leaves.
   */
  async open(
    req: import('node:http').IncomingMessage,
    res: ServerResponse,
    filter: StreamFilter,
    after: number | null,
  ): Promise<void> {
    await this.ensureStarted();
    if (after === null) {
      const [row] = await this.query('select coalesce(max(id), 0) as id from event', []);
      after = Number(row?.id ?? 0);
    }
    const session = await createSession(req, res, { keepAlive: KEEP_ALIVE_MS, retry: 2000 });
    const stream = new Stream(session, res, filter, after);
    this.streams.add(stream);
    sseStreams.inc();
    session.once('disconnected', () => {
      this.streams.delete(stream);
      sseStreams.dec();
    });
    // Replay what the client missed, a page at a time (only what it may see and asked for), then go
    // live: events offered meanwhile were held. A client that left stops the replay.
    for (;;) {
      const rows = await this.query(
        `select id, type, at, team, service_id, data from event where id > ?
           and (?::jsonb is null or team in (select jsonb_array_elements_text(?::jsonb)))
           and (?::int is null or service_id = ?::int)
           and (?::jsonb is null or type in (select jsonb_array_elements_text(?::jsonb)))
         order by id limit ?`,
        [
          stream.lastSent,
          ...twice(filter.teams && JSON.stringify(filter.teams)),
          ...twice(filter.serviceId),
          ...twice(filter.types && JSON.stringify(filter.types)),
          PAGE,
        ],
      );
      for (const row of rows) stream.send(row);
      if (rows.length < PAGE || !session.isConnected) break;
    }
    stream.live();
  }

  /** Closes every stream and stops listening. */
  close(): void {
    this.stopNotices?.();
    this.stopNotices = null;
    for (const s of this.streams) s.cut();
  }
}
