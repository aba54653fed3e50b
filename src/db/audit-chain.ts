/**
 * The audit chain's hashing: each entry's SHA-256 over its canonical content and the hash of the
 * entry before, so an entry changed, removed or inserted afterwards breaks the chain where it is.
 * Content is canonical JSON of the entry's fields in a fixed order, `details` with its keys sorted
 * at every depth, so the same row read back from PostgreSQL hashes to the same value.
 */
import { createHash } from 'node:crypto';

/** The hash before the first entry of the chain. */
export const GENESIS = '0'.repeat(64);

/** The fields of an audit entry the chain covers (every column but the chain's own). */
export interface ChainedFields {
  id: number;
  /** The instant, or its ISO-8601 text as read back (see {@link atText}). */
  at: Date | string;
  actor: string;
  actorRoles: readonly string[];
  action: string;
  outcome: string;
  targetType: string;
  targetId: string | null;
  team: string | null;
  correlationId: string | null;
  details: unknown;
  dedupeKey: string | null;
}

/** `value` as JSON would carry it, with every object's keys in sorted order. */
export function canonical(value: unknown): unknown {
  const plain: unknown = value === undefined ? null : JSON.parse(JSON.stringify(value));
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v !== null && typeof v === 'object')
      return Object.fromEntries(
        Object.keys(v as object)
          .sort()
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    return v;
  };
  return sort(plain);
}

/** The canonical content of an entry (what its hash covers besides the hash before). */
export function contentOf(e: ChainedFields): string {
  return JSON.stringify([
    e.id,
    typeof e.at === 'string' ? e.at : e.at.toISOString(),
    e.actor,
    [...e.actorRoles],
    e.action,
    e.outcome,
    e.targetType,
    e.targetId,
    e.team,
    e.correlationId,
    canonical(e.details),
    e.dedupeKey,
  ]);
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** The hash of entry `e` chained to `prev` (the hash of the entry before it). */
export function chainHash(prev: string, e: ChainedFields): string {
  return sha256(`${prev}\n${sha256(contentOf(e))}`);
}

/**
 * SQL for an entry's `at` as the chain reads it back: ISO-8601 UTC with microseconds, which
 * {@link atText} shortens to milliseconds when those are all there is (what the writer wrote).
 */
export const AT_TEXT_SQL = `to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** The text of an `at` read with {@link AT_TEXT_SQL}: the writer's ISO form when it has no microseconds. */
export const atText = (us: string): string => us.replace(/(\.\d{3})000Z$/, '$1Z');
