/**
 * The test platform's client of the API over real HTTP (`fetch`), for the fault suite, the fixtures
 * and the scripts: a bearer token per client, JSON in and out, and a record of every answer so a run
 * can assert at the end that it never saw a 5xx or a call left unanswered.
 */

/** A JSON response body: the assertions that read it check its shape (as supertest's `any` does). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Body = any;

/** One answer of the API. `status` is 0 when none came (connection refused or reset, timeout). */
export interface HttpResponse<T = Body> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * One call as the record keeps it. The body is kept for answers other than 2xx only (and is the
 * error's text for status 0): a long run polls thousands of times, and a report shows the failures.
 */
export interface Exchange {
  /** `METHOD /path` */
  what: string;
  status: number;
  body: unknown;
}

/** A client of the API at `baseUrl` that sends `token`; every client made with {@link HttpClient.as} shares one record. */
export class HttpClient {
  /** Every call, in order, by this client and those made from it with `as()`. */
  readonly seen: Exchange[];

  constructor(
    readonly baseUrl: string,
    readonly token: string,
    private readonly opts: { timeoutMs?: number; seen?: Exchange[] } = {},
  ) {
    this.seen = opts.seen ?? [];
  }

  /** The same API as another user, sharing the record of calls. */
  as(token: string): HttpClient {
    return new HttpClient(this.baseUrl, token, { ...this.opts, seen: this.seen });
  }

  /**
   * Sends `body` as JSON (when given) and parses the answer as JSON (its text when it is not); never
   * throws: a call that got no answer within `timeoutMs` (60 s) is status 0.
   */
  async call<T = Body>(
    method: string,
    urlPath: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpResponse<T>> {
    const what = `${method} ${urlPath}`;
    try {
      const res = await fetch(this.baseUrl + urlPath, {
        method,
        headers: {
          Authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 60_000),
      });
      const text = await res.text();
      const parsed = parse(text);
      this.seen.push({ what, status: res.status, body: res.ok ? undefined : parsed });
      return { status: res.status, body: parsed as T, headers: res.headers };
    } catch (err) {
      this.seen.push({ what, status: 0, body: String(err) });
      return { status: 0, body: null as T, headers: new Headers() };
    }
  }

  /** Like {@link call}, but returns the body only when the status is `expected` (or one of them), and throws otherwise. */
  async must<T = Body>(
    method: string,
    urlPath: string,
    expected: number | number[],
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<T> {
    const res = await this.call<T>(method, urlPath, body, headers);
    const wanted = Array.isArray(expected) ? expected : [expected];
    if (!wanted.includes(res.status))
      throw new Error(
        `${method} ${urlPath}: ${res.status}, expected ${wanted.join('|')}: ${JSON.stringify(res.body)?.slice(0, 500)}`,
      );
    return res.body;
  }

  /** Every 5xx seen so far, but those in `allowed` (e.g. 503 while a dependency is down). */
  serverErrors(allowed: number[] = []): Exchange[] {
    return this.seen.filter((s) => s.status >= 500 && !allowed.includes(s.status));
  }

  /** Every call that got no answer at all. */
  unanswered(): Exchange[] {
    return this.seen.filter((s) => s.status === 0);
  }

  /** How many calls got each status, lowest first. */
  statusCounts(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const s of this.seen) counts.set(s.status, (counts.get(s.status) ?? 0) + 1);
    return new Map([...counts].sort((a, b) => a[0] - b[0]));
  }
}

function parse(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
