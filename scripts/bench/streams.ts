/**
 * Bench phase: the API's memory with 100 live event streams open while deployments run (their
 * events fanned out to every stream), beside its memory idle.
 */
import type { Platform } from '../../test/support/platform';
import { openSse, type SseStream } from '../../test/support/sse-client';
import { sleep } from '../../test/support/eventually';
import { concurrentLoad } from './load';
import { details, figure } from './figures';

/** The streams figure (needs a worker). */
export async function measureStreams(
  p: Platform & { rss: { begin(phase: string): void; all(): Record<string, Record<string, number>> } },
  token: string,
  o: { streams: number; deployments: number; idleApiMb: number },
): Promise<void> {
  const { rows: svc } = await p.sql.query<{ id: number }>(
    `insert into service (name, tags, created_at, updated_at)
     values ('bench-streams', '{"owner":"bench","data_sensitivity":"internal"}', now(), now()) returning id`,
  );
  const serviceId = svc[0]!.id;
  const { rows: envs } = await p.sql.query<{ id: number }>(
    `insert into environment (service_id, name, tier, status, config, job_id, created_by, created_at, updated_at)
     select $1, 'dev-' || g, 'dev', 'ready', '{}', 'provision-bench-streams-dev-' || g, 'bench', now(), now()
     from generate_series(1, $2) g order by g returning id`,
    [serviceId, o.deployments],
  );
  const streams: SseStream[] = [];
  try {
    for (let i = 0; i < o.streams; i++)
      streams.push(await openSse(`${p.apiUrl}/api/events`, { authorization: `Bearer ${token}` }));
    if (streams.some((s) => s.status !== 200)) throw new Error('a stream did not open');
    p.rss.begin('streams');
    let next = 0;
    const load = await concurrentLoad(envs.length, 4, async () => {
      const envId = envs[next++]!.id;
      const res = await fetch(`${p.apiUrl}/api/services/${serviceId}/environments/${envId}/deployments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ version: '1.0.0' }),
      });
      if (res.status !== 202) throw new Error(`trigger: ${res.status}`);
    });
    if (load.errors > 0) throw new Error(`${load.errors} triggers failed`);
    // Every stream gets every deployment's two events (created, succeeded).
    const want = 2 * o.deployments;
    const deadline = Date.now() + 120_000;
    while (streams.some((s) => s.events.length < want) && Date.now() < deadline) await sleep(250);
    const short = streams.filter((s) => s.events.length < want).length;
    if (short > 0) throw new Error(`${short} streams got fewer than ${want} events`);
    const peak = p.rss.all()['streams']?.['api'] ?? NaN;
    figure(
      `API RSS with ${o.streams} event streams open, ${want} events each (÷ idle)`,
      'MB',
      peak,
      o.idleApiMb,
      null,
    );
    details['streams'] = { streams: o.streams, events_per_stream: want, api_rss_peak_mb: peak };
  } finally {
    for (const s of streams) s.close();
  }
}
