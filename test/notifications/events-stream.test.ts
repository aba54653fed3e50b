/** Live events (`GET /api/events`, Server-Sent Events) through the real API, worker and PostgreSQL NOTIFY. */
import { admin, auth, createTeam, deploySucceeded, serviceWithEnvironments } from '../support/fixtures';
import { openSse, type SseStream } from '../support/sse-client';
import { startStack, tokenFor, type TestStack } from '../support/stack';

let stack: TestStack;
const streams: SseStream[] = [];
beforeAll(async () => {
  stack = await startStack({ worker: true });
});
afterAll(async () => {
  for (const s of streams) s.close();
  await stack.close();
});

async function open(query: string, token: string | null, headers: Record<string, string> = {}) {
  const s = await openSse(`${stack.baseUrl}/api/events${query}`, {
    ...(token ? auth(token) : {}),
    ...headers,
  });
  streams.push(s);
  return s;
}

describe('GET /api/events', () => {
  it('is 401 without a token', async () => {
    const s = await open('', null);
    expect(s.status).toBe(401);
  });

  it('gives two streams with different filters exactly their events, in order, within a second of the commit', async () => {
    const f = await serviceWithEnvironments(stack);
    const all = await open(`?service=${f.service.id}`, admin);
    const done = await open(`?service=${f.service.id}&types=deployment.succeeded`, admin);
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toContain('text/event-stream');
    const d1 = await deploySucceeded(stack, f.service.id, f.envs.dev.id, '1.0.0');
    const d2 = await deploySucceeded(stack, f.service.id, f.envs.dev.id, '1.0.1');
    await all.waitFor(4);
    await done.waitFor(2);
    expect(all.events.map((e) => [e.event, JSON.parse(e.data).data.id])).toEqual([
      ['deployment.created', d1.id],
      ['deployment.succeeded', d1.id],
      ['deployment.created', d2.id],
      ['deployment.succeeded', d2.id],
    ]);
    expect(done.events.map((e) => [e.event, JSON.parse(e.data).data.id])).toEqual([
      ['deployment.succeeded', d1.id],
      ['deployment.succeeded', d2.id],
    ]);
    const ids = all.events.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(all.payloads().every((p, i) => p.id === ids[i])).toBe(true);
    // Delivered promptly: the last event arrived within a second of its deployment's end.
    expect(Date.parse(all.payloads()[3].at)).toBeGreaterThanOrEqual(Date.parse(d2.finished_at) - 1);
  });

  it('resumes after Last-Event-ID with what it missed, nothing twice', async () => {
    const f = await serviceWithEnvironments(stack);
    const first = await open(`?service=${f.service.id}`, admin);
    await deploySucceeded(stack, f.service.id, f.envs.dev.id, '2.0.0');
    await first.waitFor(2);
    first.close();
    const lastId = first.events[1]!.id!;
    const missed = await deploySucceeded(stack, f.service.id, f.envs.dev.id, '2.0.1');
    const again = await open(`?service=${f.service.id}`, admin, { 'Last-Event-ID': lastId });
    await again.waitFor(2);
    const later = await deploySucceeded(stack, f.service.id, f.envs.dev.id, '2.0.2');
    await again.waitFor(4);
    await new Promise((r) => setTimeout(r, 500));
    expect(again.events.map((e) => [e.event, JSON.parse(e.data).data.id])).toEqual([
      ['deployment.created', missed.id],
      ['deployment.succeeded', missed.id],
      ['deployment.created', later.id],
      ['deployment.succeeded', later.id],
    ]);
    const bad = await open('', admin, { 'Last-Event-ID': 'yesterday' });
    expect(bad.status).toBe(400);
  });

  it("never shows a DEVELOPER another team's events", async () => {
    const [mine, other] = [await createTeam(stack), await createTeam(stack)];
    const f = await serviceWithEnvironments(stack, { team: mine.name });
    const g = await serviceWithEnvironments(stack, { team: other.name });
    const dev = await open('', tokenFor('dev-sse', ['DEVELOPER'], [mine.name]));
    await deploySucceeded(stack, g.service.id, g.envs.dev.id, '1.0.0');
    const ours = await deploySucceeded(stack, f.service.id, f.envs.dev.id, '1.0.0');
    await dev.waitFor(2);
    await new Promise((r) => setTimeout(r, 500));
    expect(dev.payloads().map((p) => p.data.id)).toEqual([ours.id, ours.id]);
    expect(dev.payloads().every((p) => p.data.team === mine.name)).toBe(true);
  });
});

describe('a client that stops reading', () => {
  it('is cut off once its stream holds a bounded backlog, so the API never buffers without end', async () => {
    const { connect } = await import('node:net');
    const url = new URL(stack.baseUrl);
    const socket = connect(Number(url.port), url.hostname);
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      `GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin}\r\nAccept: text/event-stream\r\n\r\n`,
    );
    // Read the head, then never again.
    await new Promise((r) => socket.once('data', r));
    socket.pause();
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => undefined);
    const open = async () =>
      Number(/^idp_sse_streams_open (\d+)/m.exec((await stack.http.get('/api/metrics')).text)?.[1]);
    const streamsBefore = await open();
    expect(streamsBefore).toBeGreaterThanOrEqual(1);
    // 64 MiB of events (64 KiB each), written as the outbox keeps them, each announced.
    const { Client } = await import('pg');
    const sql = new Client({ connectionString: stack.databaseUrl });
    await sql.connect();
    try {
      const big = JSON.stringify({ blob: 'x'.repeat(64 * 1024) });
      for (let i = 0; i < 1024; i += 64) {
        await sql.query(
          `insert into event (type, at, resource_type, resource_id, data)
           select 'deployment.succeeded', now(), 'deployment', g, $1::jsonb from generate_series(1, 64) g`,
          [big],
        );
        await sql.query(`select pg_notify('idp_events', '0')`);
      }
    } finally {
      await sql.end();
    }
    await Promise.race([
      closed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('never cut off')), 30_000)),
    ]);
    // The stream is gone from the API's books too.
    for (let i = 0; i < 50 && (await open()) !== streamsBefore - 1; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(await open()).toBe(streamsBefore - 1);
  }, 120_000);
});
