import type { Body, HttpClient } from '../support/http-client';
import { sleep } from '../support/eventually';

/** What {@link probe} saw. */
export interface ProbeSamples {
  health: { status: number; body: Body }[];
  reads: number[];
}

/**
 * Repeats GETs against the API while a fault lasts and records what came back: `/api/health` and a
 * read that needs PostgreSQL. Stop it to get the samples.
 */
export function probe(api: HttpClient, readUrl: string): { stop(): Promise<ProbeSamples> } {
  const samples: ProbeSamples = { health: [], reads: [] };
  let running = true;
  const loop = (async () => {
    while (running) {
      const [h, r] = await Promise.all([api.call('GET', '/api/health'), api.call('GET', readUrl)]);
      samples.health.push({ status: h.status, body: h.body });
      samples.reads.push(r.status);
      await sleep(300);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}
