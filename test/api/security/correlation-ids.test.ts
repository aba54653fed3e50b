/**
 * Forged correlation ids and header injection (issue 5's security suite): whatever a caller puts in
 * X-Correlation-Id or X-Request-Id, no header is injected into the answer, and the echoed header, the
 * request's log line and its audit entry carry the same well-formed id.
 */
jest.mock('../../../src/logger', () =>
  jest.requireActual<typeof import('./log-capture')>('./log-capture').capturingLoggerModule(),
);

import { capturedLines } from './log-capture';
import { rawRequest } from './raw-request';
import { useSecurityStack } from './security-stack';
import { admin } from '../../support/fixtures';
import { uniq } from '../../support/stack';

// The request log lines are the evidence here, so the logger writes everything (to memory).
const api = useSecurityStack({ env: { LOG_LEVEL: 'debug' } });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('forged correlation ids and header injection', () => {
  /**
   * What becomes of the forged header: `kept` — a CRLF ends the header line, so what precedes it is
   * an ordinary well-formed id the caller sent (kept as such) and what follows is a request header of
   * its own, never echoed; `uuid` — the app sees the whole forged value and replaces it with a fresh
   * UUID; `parser` — Node's HTTP parser answers 400 before the app runs.
   */
  type Fate = 'kept' | 'uuid' | 'parser';
  const FORGED: [string, Fate, (id: string) => string][] = [
    ['CRLF in X-Correlation-Id', 'kept', (id) => `X-Correlation-Id: ${id}\r\nSet-Cookie: x=1`],
    ['CRLF in X-Request-Id', 'kept', (id) => `X-Request-Id: ${id}\r\nSet-Cookie: x=1`],
    [
      'CRLF and a second X-Correlation-Id',
      'uuid',
      (id) => `X-Correlation-Id: ${id}\r\nX-Correlation-Id: forged\r\nLocation: https://evil.example`,
    ],
    ['percent-encoded CRLF', 'uuid', (id) => `X-Correlation-Id: ${id}%0d%0aSet-Cookie:%20x=1`],
    ['tab and header text', 'uuid', (id) => `X-Correlation-Id: ${id}\tSet-Cookie: x=1`],
    ['UTF-8 right-to-left override', 'uuid', (id) => `X-Request-Id: ${id}\u202e1=x :eikooC-teS`],
    ['bare LF', 'parser', (id) => `X-Correlation-Id: ${id}\nSet-Cookie: x=1`],
    ['bare CR', 'parser', (id) => `X-Correlation-Id: ${id}\rSet-Cookie: x=1`],
    ['obsolete line folding', 'parser', (id) => `X-Correlation-Id: ${id}\r\n Set-Cookie: x=1`],
    ['NUL', 'parser', (id) => `X-Correlation-Id: ${id}\u0000Set-Cookie: x=1`],
  ];

  it.each(FORGED)(
    '%s: nothing is injected; header, log line and audit entry agree (%s)',
    async (_name, fate, forge) => {
      const id = uniq('fwd');
      const team = uniq('hdr');
      const res = await rawRequest(
        api.stack.server,
        'POST',
        '/api/teams',
        `Authorization: Bearer ${admin}\r\n${forge(id)}`,
        JSON.stringify({ name: team }),
      );
      expect(res.headers.filter(([name]) => ['set-cookie', 'location'].includes(name))).toEqual([]);
      const audit = await api.pg.query(
        `select correlation_id from audit_log where action = 'team.create' and team = $1`,
        [team],
      );
      if (fate === 'parser') {
        expect(res.status).toBe(400);
        expect(audit.rows).toEqual([]);
        expect(capturedLines.filter((line) => line.includes(id))).toEqual([]);
        return;
      }
      expect(res.status).toBe(201);
      const echoed = res.headers.filter(([name]) => name === 'x-correlation-id').map(([, value]) => value);
      expect(echoed).toEqual([fate === 'kept' ? id : expect.stringMatching(UUID)]);
      // One log line for the request, under the echoed id; the forged text in none.
      const lines = capturedLines.filter((line) => line.includes(id) || line.includes(echoed[0]!));
      expect(
        lines.map((line) => JSON.parse(line)).map((l) => [l.correlation_id, l.msg, l.path, l.status]),
      ).toEqual([[echoed[0], 'request', '/api/teams', 201]]);
      expect(lines.filter((line) => /Set-Cookie|evil\.example/i.test(line))).toEqual([]);
      expect(audit.rows).toEqual([{ correlation_id: echoed[0] }]);
    },
  );
});
