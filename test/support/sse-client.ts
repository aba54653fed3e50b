/**
 * A Server-Sent Events client for the tests: `fetch` with a bearer token (EventSource cannot send
 * one), the stream parsed into events as they arrive.
 */

/** One event of a stream. */
export interface SseEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

/** An open stream: what it received so far, and how to close it. */
export interface SseStream {
  status: number;
  headers: Headers;
  events: SseEvent[];
  /** Comment lines received (keep-alives). */
  comments: number;
  /** The parsed `data` of every event. */
  payloads(): any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Waits until `n` events arrived (or throws after `ms`). */
  waitFor(n: number, ms?: number): Promise<SseEvent[]>;
  close(): void;
}

/** Parses SSE text into events (fields per the spec), keeping an unfinished tail. */
export function parseSse(text: string): { events: SseEvent[]; comments: number; rest: string } {
  const blocks = text.split(/\r?\n\r?\n/);
  const rest = blocks.pop() ?? '';
  const events: SseEvent[] = [];
  let comments = 0;
  for (const block of blocks) {
    let id: string | undefined;
    let event: string | undefined;
    const data: string[] = [];
    let fields = 0;
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) {
        comments += 1;
        continue;
      }
      const at = line.indexOf(':');
      const name = at === -1 ? line : line.slice(0, at);
      const value = at === -1 ? '' : line.slice(at + 1).replace(/^ /, '');
      if (name === 'id') id = value;
      else if (name === 'event') event = value;
      else if (name === 'data') data.push(value);
      else continue;
      fields += 1;
    }
    if (fields > 0 && data.length > 0) events.push({ id, event, data: data.join('\n') });
  }
  return { events, comments, rest };
}

/** Opens `url` as an event stream with `headers`; resolves once the answer's head arrived. */
export async function openSse(url: string, headers: Record<string, string>): Promise<SseStream> {
  const abort = new AbortController();
  const res = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: abort.signal,
  });
  const stream: SseStream = {
    status: res.status,
    headers: res.headers,
    events: [],
    comments: 0,
    payloads: () => stream.events.map((e) => JSON.parse(e.data)),
    async waitFor(n, ms = 15_000) {
      const deadline = Date.now() + ms;
      while (stream.events.length < n) {
        if (Date.now() > deadline)
          throw new Error(`sse: ${stream.events.length} of ${n} events after ${ms} ms`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return stream.events;
    },
    close: () => abort.abort(),
  };
  if (!res.ok || !res.body) return stream;
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        const parsed = parseSse(buffer);
        buffer = parsed.rest;
        stream.events.push(...parsed.events.filter((e) => e.event !== undefined || e.id !== undefined));
        stream.comments += parsed.comments;
      }
    } catch {
      // closed
    }
  })();
  return stream;
}
