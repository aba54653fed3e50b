// Connection exceptions (08…, except 08P01 protocol_violation: a statement the server refused, a
// bug, not an outage), admin/crash shutdowns (57P01-57P03), insufficient resources (53…).
const PG_UNAVAILABLE = /^(08(?!P01)|57P0|53)/;
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

/**
 * True when `err` means a dependency (PostgreSQL, Temporal) is down rather than a bug: connection
 * errors, pool timeouts, PostgreSQL admin shutdowns, gRPC UNAVAILABLE/DEADLINE_EXCEEDED.
 */
export function isUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const o = e as { code?: unknown; name?: string; message?: string };
    if (typeof o.code === 'string' && (NET_CODES.has(o.code) || PG_UNAVAILABLE.test(o.code))) return true;
    // gRPC status codes: 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED.
    if (o.name === 'ServiceError' || o.name === 'ConnectionError' || o.code === 14 || o.code === 4)
      return true;
    if (
      typeof o.message === 'string' &&
      /Knex: Timeout acquiring a connection|Connection terminated|connect ECONNREFUSED|Failed to connect/i.test(
        o.message,
      )
    )
      return true;
  }
  return false;
}
