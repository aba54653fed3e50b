/** Keyset pagination of every list: `?limit=&cursor=`, the cursor's decoding and the page it makes. */
import { z } from 'zod';
import { InputError } from '../domain/errors';
import { canonicalInt } from './schemas';

/** `?limit=&cursor=` of every list. */
export const pageQuery = {
  limit: canonicalInt(200, '50').default(50),
  cursor: z.string().max(200).optional(),
};

/** Decodes a keyset cursor (the last id seen) or fails with 400. */
export function decodeCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { id?: unknown };
    if (typeof value.id === 'number' && Number.isInteger(value.id) && value.id > 0) return value.id;
  } catch {
    // fall through to the 400 below
  }
  throw new InputError('invalid cursor', [
    {
      rule: 'schema',
      field: 'query.cursor',
      message: 'not a cursor this API issued',
      hint: 'pass next_cursor from the previous page unchanged',
    },
  ]);
}

/** Builds a page from `limit + 1` rows fetched in key order. */
export function toPage<T extends { id: number }, R>(rows: T[], limit: number, serialize: (row: T) => R) {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items: items.map(serialize),
    next_cursor:
      rows.length > limit && last ? Buffer.from(JSON.stringify({ id: last.id })).toString('base64url') : null,
  };
}
