/**
 * Log lines carry each key once (issue 9: 7,620 of 7,676 dev log lines had `component` twice, from
 * pino children of a logger whose base already had one). JSON.parse keeps the last of two equal
 * keys, so the raw text of every line is scanned instead.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { createApp } from '../src/api/app';
import { currentCorrelationId } from '../src/api/request-context';
import { initORM } from '../src/db/orm';
import { devLoggers } from '../src/dev/runner';
import { createLogger } from '../src/logger';
import { createTemporalClient } from '../src/temporal/connection';
import { sdkLogger } from '../src/worker/runtime';
import { createWorker } from '../src/worker/worker';
import { admin, auth, createService, createTeam, readyEnvironment } from './support/fixtures';
import { freshDatabase, testConfig, uniq, workflowBundle } from './support/stack';

/**
 * Every key that occurs twice in one object of `line`, at any depth, as `path.key`. A tolerant
 * scan of the JSON text: it tracks strings, escapes and nesting, and nothing else.
 */
function duplicateKeys(line: string): string[] {
  const duplicates: string[] = [];
  // One entry per open object (its keys so far) or array (null), with the path to it.
  const open: { keys: Set<string> | null; path: string }[] = [];
  let expectKey = false;
  let lastKey = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      let j = i + 1;
      while (j < line.length && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      const top = open[open.length - 1];
      if (expectKey && top?.keys) {
        const key = JSON.parse(line.slice(i, j + 1)) as string;
        if (top.keys.has(key)) duplicates.push(`${top.path}${key}`);
        top.keys.add(key);
        lastKey = key;
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      const parent = open[open.length - 1];
      const path = parent ? `${parent.path}${parent.keys ? lastKey : '[]'}.` : '';
      open.push({ keys: c === '{' ? new Set() : null, path });
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      open.pop();
    } else if (c === ',') {
      expectKey = open[open.length - 1]?.keys != null;
    }
  }
  return duplicates;
}

/** A destination that keeps every raw line pino writes. */
function capture(): { lines: string[]; write(chunk: string): void } {
  const lines: string[] = [];
  return {
    lines,
    write(chunk: string) {
      lines.push(...chunk.split('\n').filter((l) => l !== ''));
    },
  };
}

describe('duplicateKeys (the scan the other tests rely on)', () => {
  it.each([
    ['{"level":30,"component":"dev","component":"api","msg":"x"}', ['component']],
    ['{"a":{"b":1,"b":2},"c":[{"d":1,"d":2}]}', ['a.b', 'c.[].d']],
    ['{"msg":"\\"component\\":1,\\"component\\":2","component":"api"}', []],
    ['{"a":{"x":1},"b":{"x":1},"x":[1,{"x":2}]}', []],
  ])('%s → %j', (line, expected) => {
    expect(duplicateKeys(line)).toEqual(expected);
  });
});

describe('createLogger: one component per line', () => {
  const lines = (write: (log: ReturnType<typeof createLogger>) => void): Record<string, unknown>[] => {
    const out = capture();
    write(createLogger('debug', { component: 'root', destination: out }));
    for (const line of out.lines) expect([line, duplicateKeys(line)]).toEqual([line, []]);
    return out.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  };

  it("a child's component replaces its parent's, at any depth, and other bindings stay", () => {
    const [root, child, grandchild, sibling] = lines((log) => {
      log.info('root');
      const api = log.child({ component: 'api' });
      api.child({ correlation_id: 'c-1' }).info('child');
      api
        .child({ correlation_id: 'c-2' })
        .child({ component: 'activity', workflow_id: 'w-1' })
        .info('grandchild');
      log.child({ component: 'worker' }).info('sibling');
    });
    expect(root).toMatchObject({ component: 'root', msg: 'root' });
    expect(child).toMatchObject({ component: 'api', correlation_id: 'c-1' });
    expect(grandchild).toMatchObject({ component: 'activity', correlation_id: 'c-2', workflow_id: 'w-1' });
    expect(sibling).toMatchObject({ component: 'worker' });
  });

  it('a component given with one call replaces the logger’s for that line only', () => {
    const [once, after] = lines((log) => {
      log.debug({ component: 'postgres' }, 'once');
      log.debug('after');
    });
    expect(once).toMatchObject({ component: 'postgres' });
    expect(after).toMatchObject({ component: 'root' });
  });

  it('keeps redaction and levels', () => {
    const out = capture();
    const log = createLogger('info', { destination: out });
    log.child({ component: 'api' }).info({ token: 'secret-value', authorization: 'Bearer x' }, 'redacted');
    log.debug('not written');
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0]).not.toContain('secret-value');
    expect(JSON.parse(out.lines[0]!)).toMatchObject({
      component: 'api',
      token: '[redacted]',
      authorization: '[redacted]',
    });
  });
});

describe('the dev runner’s loggers, through a real API, worker and the SDK’s logger', () => {
  const out = capture();
  const loggers = devLoggers('debug', out);
  let close: () => Promise<void> = async () => undefined;
  let http: ReturnType<typeof request>;
  let api: { baseUrl: string };

  beforeAll(async () => {
    const db = await freshDatabase();
    const config = testConfig({ DATABASE_URL: db.url, LOG_LEVEL: 'debug' });
    const orm = await initORM(db.url, 10);
    const temporal = await createTemporalClient(config, currentCorrelationId);
    const server = await new Promise<Server>((resolve) => {
      const s = createApp({ config, orm, temporal, logger: loggers.api }).listen(0, '127.0.0.1', () =>
        resolve(s),
      );
    });
    const worker = await createWorker({
      config,
      orm,
      logger: loggers.worker,
      workflowBundle: await workflowBundle(),
    });
    const running = worker.run();
    http = request(server);
    api = { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    close = async () => {
      worker.shutdown();
      await running;
      await new Promise<void>((r) => server.close(() => r()));
      await temporal.connection.close();
      await orm.close(true);
      await db.drop().catch(() => undefined);
    };
  });
  afterAll(() => close());

  it('writes every key once per line, and one component on every line', async () => {
    // What the runner itself logs, through the loggers it passes to its helpers.
    loggers.dev.info('database schema up to date');
    loggers.postgres.debug('database system is ready to accept connections');
    loggers.temporal.debug('temporal server started');
    // The SDK's metadata may repeat our keys; it must not repeat them in the line.
    sdkLogger(loggers.dev).warn('worker task failed', {
      sdkComponent: 'worker',
      component: 'core',
      time: 1,
      level: 'x',
      taskQueue: 'q',
    });

    // Requests (one line each from the API) and a provisioning run (lines from its activities).
    const team = await createTeam(api);
    const service = await createService(api, team.name);
    await readyEnvironment(api, service.id, 'dev');
    expect((await http.get('/api/teams')).status).toBe(401);
    expect([400, 404]).toContain((await http.get(`/api/services/${uniq('x')}`).set(auth(admin))).status);

    const parsed = out.lines.map((line) => ({
      line,
      duplicates: duplicateKeys(line),
      json: JSON.parse(line) as Record<string, unknown>,
    }));
    expect(parsed.filter((p) => p.duplicates.length > 0)).toEqual([]);
    expect(parsed.filter((p) => typeof p.json['component'] !== 'string')).toEqual([]);
    // Not vacuous: every part of the platform wrote lines here.
    expect(new Set(parsed.map((p) => p.json['component']))).toEqual(
      new Set(['dev', 'postgres', 'temporal', 'temporal-sdk', 'api', 'activity']),
    );
    expect(parsed.find((p) => p.json['msg'] === 'environment status changed')?.json).toMatchObject({
      component: 'activity',
    });
    expect(parsed.find((p) => p.json['component'] === 'temporal-sdk')?.json).toMatchObject({
      sdk: { component: 'core', sdkComponent: 'worker' },
    });
    expect(parsed.filter((p) => p.json['msg'] === 'request').length).toBeGreaterThanOrEqual(5);
  });
});
