/**
 * Which failures mean "a dependency is down" (503 with Retry-After) and which are bugs (500).
 */
import { isUnavailable } from '../../src/api/errors';

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
    ['a cause two levels down', { message: 'outer', cause: { message: 'inner', cause: { code: 'ECONNRESET' } } }],
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
