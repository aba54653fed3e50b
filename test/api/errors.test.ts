/**
 * Which failures mean "a dependency is down" (503 with Retry-After), which are bugs (500), and which
 * are the client going away: a real socket that closes mid-body, with the real logger's lines
 * captured (the real `createLogger` at the production level, only its destination swapped for memory).
 */
jest.mock('../../src/logger', () => {
  const actual = jest.requireActual<typeof import('../../src/logger')>('../../src/logger');
  const { symbols } = jest.requireActual<typeof import('pino')>('pino');
  const lines: string[] = [];
  return {
    ...actual,
    capturedLines: lines,
    createLogger: (...args: Parameters<typeof actual.createLogger>) => {
      const logger = actual.createLogger(...args);
      // pino writes through this symbol, and children inherit it.
      (logger as unknown as Record<symbol, unknown>)[symbols.streamSym] = {
        write: (line: string) => lines.push(line),
      };
      return logger;
    },
  };
});

import type { IncomingMessage } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { isClientAbort } from '../../src/api/errors';
import { isUnavailable } from '../../src/unavailable';
import { admin, auth } from '../support/fixtures';
import { eventually, startStack, type TestStack } from '../support/stack';

const { capturedLines } = jest.requireMock<{ capturedLines: string[] }>('../../src/logger');

describe('isUnavailable', () => {
  it.each([
    ['PostgreSQL connection failure', { code: '08006' }],
    ['PostgreSQL cannot connect now', { code: '57P03' }],
    ['PostgreSQL admin shutdown', { code: '57P01' }],
    ['PostgreSQL too many connections', { code: '53300' }],
    ['refused TCP connection', { code: 'ECONNREFUSED' }],
    ['gRPC UNAVAILABLE', { code: 14 }],
    ['gRPC DEADLINE_EXCEEDED', { code: 4 }],
    ['pool timeout', new Error('Knex: Timeout acquiring a connection. The pool is probably full.')],
    [
      'a cause two levels down',
      { message: 'outer', cause: { message: 'inner', cause: { code: 'ECONNRESET' } } },
    ],
  ])('%s is an outage', (_name, err) => {
    expect(isUnavailable(err)).toBe(true);
  });

  it.each([
    ['PostgreSQL protocol violation (a statement it refused)', { code: '08P01' }],
    ['unique violation', { code: '23505' }],
    ['syntax error', { code: '42601' }],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
  ])('%s is not', (_name, err) => {
    expect(isUnavailable(err)).toBe(false);
  });
});

describe('isClientAbort', () => {
  const req = (state: { readableAborted?: boolean; destroyed?: boolean }) =>
    ({
      readableAborted: state.readableAborted ?? false,
      socket: { destroyed: state.destroyed ?? false },
    }) as unknown as IncomingMessage;
  const aborted = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });

  it.each([
    ["the request stream's 'aborted'", aborted, req({ readableAborted: true, destroyed: true })],
    [
      "llhttp's parse error when the socket ends mid-body",
      Object.assign(new Error('Parse Error'), { code: 'HPE_INVALID_EOF_STATE' }),
      req({ destroyed: true }),
    ],
    [
      'a reset socket',
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      req({ destroyed: true }),
    ],
    [
      'a stream closed early',
      Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }),
      req({ readableAborted: true }),
    ],
  ])('%s is the client going away', (_name, err, r) => {
    expect(isClientAbort(err, r)).toBe(true);
  });

  it.each([
    ['a PostgreSQL reset while the client is still there', aborted, req({})],
    [
      'a bug while the client is gone',
      new TypeError('x is undefined'),
      req({ readableAborted: true, destroyed: true }),
    ],
    [
      'an outage while the client is gone',
      { code: '57P01' },
      req({ readableAborted: true, destroyed: true }),
    ],
    ['no error', null, req({ destroyed: true })],
  ])('%s is not', (_name, err, r) => {
    expect(isClientAbort(err, r)).toBe(false);
  });
});

describe('a client that closes the connection mid-body', () => {
  let stack: TestStack;
  beforeAll(async () => {
    // The production level: a debug line would not reach an operator either.
    stack = await startStack({ env: { LOG_LEVEL: 'info' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const teams = async () =>
    Number((await stack.orm.em.fork().getConnection().execute('select count(*) n from team'))[0].n);

  /**
   * Announces 100 bytes, sends 11, then closes the socket (`destroy`: both directions, as a killed
   * client; `end`: half-closed, so an answer can still arrive). Resolves with what came back.
   */
  function partialBody(close: 'destroy' | 'end', correlationId: string): Promise<string> {
    const { port } = stack.server.address() as AddressInfo;
    return new Promise((resolve) => {
      let received = '';
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(
          `POST /api/teams HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${auth(admin).Authorization}\r\nX-Correlation-Id: ${correlationId}\r\n` +
            'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":"a',
        );
        // Long enough for the server to be reading the body when the connection goes.
        setTimeout(() => (close === 'destroy' ? socket.destroy() : socket.end()), 150);
      });
      socket.on('data', (chunk) => (received += String(chunk)));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(received));
    });
  }

  it.each<['destroy' | 'end', RegExp]>([
    ['destroy', /^$/],
    ['end', /^HTTP\/1\.1 400 /],
  ])(
    '(%s) leaves one JSON log line at info, no stack on stderr, no 503, and nothing written',
    async (close, answer) => {
      const stderr = jest.spyOn(process.stderr, 'write');
      const consoleError = jest.spyOn(console, 'error');
      try {
        const before = await teams();
        const id = `abort-${close}-${Date.now()}`;
        const mine = () =>
          capturedLines.filter((l) => l.includes(id)).map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(await partialBody(close, id)).toMatch(answer);
        await eventually(async () => mine().length > 0, 5000, 'the request line');
        // Whatever else Koa or Node would report arrives within a few ticks of the close.
        await new Promise((r) => setTimeout(r, 300));
        const lines = mine();
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatchObject({
          msg: 'request',
          method: 'POST',
          path: '/api/teams',
          status: 400,
          client_aborted: true,
        });
        expect(lines[0]!['level']).toBeLessThanOrEqual(40);
        expect(lines[0]).not.toHaveProperty('err');
        expect(capturedLines.filter((l) => /"level":50|dependency unavailable|"status":503/.test(l))).toEqual(
          [],
        );
        expect(stderr.mock.calls.filter(([chunk]) => /Error|\n\s+at /.test(String(chunk)))).toEqual([]);
        expect(consoleError).not.toHaveBeenCalled();
        expect(await teams()).toBe(before);
        // Nothing was left broken: the next request is served as usual.
        expect((await stack.http.get('/api/teams').set(auth(admin))).status).toBe(200);
      } finally {
        stderr.mockRestore();
        consoleError.mockRestore();
      }
    },
  );
});
