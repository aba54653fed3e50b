/**
 * Load generation for the benchmark: autocannon for HTTP (its per-response durations, fractional
 * milliseconds, rather than its integer-millisecond histogram), a concurrency loop for anything else,
 * and exact percentiles over every sample.
 */
import autocannon from 'autocannon';

/** What a load run measured. */
export interface LoadResult {
  /** Completed requests (any status). */
  requests: number;
  /** Responses with a status other than 2xx, and connection errors/timeouts. */
  non2xx: number;
  errors: number;
  statuses: Record<string, number>;
  seconds: number;
  perSecond: number;
  /** Latency percentiles of the 2xx responses, in ms. */
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  /** Every 2xx latency (ms), for {@link combine}; left out of reports. */
  samples: number[];
}

/** The `p`-th percentile (0–100) of ascending `sorted` values, by nearest rank. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

function summarize(
  samples: number[],
  seconds: number,
  requests: number,
  extra: Pick<LoadResult, 'non2xx' | 'errors' | 'statuses'>,
): LoadResult {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (n: number): number => Math.round(n * 1000) / 1000;
  return {
    requests,
    ...extra,
    seconds: round(seconds),
    perSecond: round(requests / seconds),
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    mean: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
    samples,
  };
}

/** One result from several runs of the same load (e.g. rounds alternated with a baseline's). */
export function combine(results: LoadResult[]): LoadResult {
  const statuses: Record<string, number> = {};
  for (const r of results)
    for (const [code, n] of Object.entries(r.statuses)) statuses[code] = (statuses[code] ?? 0) + n;
  const sum = (f: (r: LoadResult) => number): number => results.reduce((a, r) => a + f(r), 0);
  return summarize(
    results.flatMap((r) => r.samples),
    sum((r) => r.seconds),
    sum((r) => r.requests),
    { non2xx: sum((r) => r.non2xx), errors: sum((r) => r.errors), statuses },
  );
}

/** JSON.stringify replacer that leaves the raw samples out of reports. */
export const withoutSamples = (key: string, value: unknown): unknown =>
  key === 'samples' ? undefined : value;

export interface HttpLoad {
  baseUrl: string;
  /** Fixed path, or a function giving each request's path (e.g. one environment per trigger). */
  path: string | (() => string);
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: unknown;
  connections: number;
  /** Run for this many seconds… */
  seconds?: number;
  /** …or send exactly this many requests. */
  amount?: number;
}

/** Runs autocannon and times every response itself. */
export async function httpLoad(load: HttpLoad): Promise<LoadResult> {
  const samples: number[] = [];
  const pathOf = typeof load.path === 'string' ? (): string => load.path as string : load.path;
  const body = load.body === undefined ? undefined : JSON.stringify(load.body);
  const started = process.hrtime.bigint();
  const instance = autocannon({
    url: load.baseUrl,
    connections: load.connections,
    ...(load.amount !== undefined ? { amount: load.amount } : { duration: load.seconds ?? 5 }),
    timeout: 30,
    requests: [
      {
        method: load.method ?? 'GET',
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...load.headers },
        ...(body === undefined ? {} : { body }),
        setupRequest: (request) => ({ ...request, path: pathOf() }),
      },
    ],
  });
  let lastResponse = started;
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    lastResponse = process.hrtime.bigint();
    if (status >= 200 && status < 300) samples.push(ms);
  });
  const result = await instance;
  // Up to the last response, not to the promise: autocannon notices that `amount` requests are done
  // on its one-second sampling tick, which would round every run up to whole seconds.
  const seconds = Number(lastResponse - started) / 1e9;
  const statuses = Object.fromEntries(
    Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count]),
  );
  const requests = Object.values(statuses).reduce((a, b) => a + b, 0);
  return summarize(samples, seconds, requests, {
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    statuses,
  });
}

/** Runs `task(i)` for i in [0, amount) with `concurrency` in flight, timing each call. */
export async function concurrentLoad(
  amount: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<LoadResult> {
  const samples: number[] = [];
  let next = 0;
  let errors = 0;
  const started = process.hrtime.bigint();
  const lane = async (): Promise<void> => {
    for (let i = next++; i < amount; i = next++) {
      const t0 = process.hrtime.bigint();
      try {
        await task(i);
        samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return summarize(samples, seconds, amount, {
    non2xx: 0,
    errors,
    statuses: { ok: samples.length, failed: errors },
  });
}
