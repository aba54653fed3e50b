/**
 * Events: the state changes people are told about (event webhooks, the live stream). An event is
 * not written by a path of its own: it is what an audit entry of a state change means, read from
 * the entry by {@link eventTypeOf} where the entry is recorded, and written in the same transaction.
 */
import type { AuditEntry } from './audit-entries';

/** Every event type (the contract's list). */
export const EVENT_TYPES = [
  'deployment.created',
  'deployment.awaiting_approval',
  'deployment.approval_reminder',
  'deployment.succeeded',
  'deployment.failed',
  'deployment.rejected',
  'deployment.expired',
  'deployment.cancelled',
  'deployment.rolled_back',
  'release.succeeded',
  'release.failed',
  'environment.ready',
  'environment.failed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The audit actions that are events, and the event each one is. */
const EVENT_OF_ACTION: Readonly<Record<string, EventType>> = {
  'deployment.create': 'deployment.created',
  'deployment.awaiting_approval': 'deployment.awaiting_approval',
  'deployment.approval_reminder': 'deployment.approval_reminder',
  'deployment.succeeded': 'deployment.succeeded',
  'deployment.failed': 'deployment.failed',
  'deployment.rejected': 'deployment.rejected',
  'deployment.expired': 'deployment.expired',
  'deployment.cancelled': 'deployment.cancelled',
  'deployment.rolled_back': 'deployment.rolled_back',
  'release.succeeded': 'release.succeeded',
  'release.failed': 'release.failed',
  'environment.ready': 'environment.ready',
  'environment.failed': 'environment.failed',
};

/** The event an audit entry announces, or null. Only changes that happened (success or failure outcomes) are events. */
export function eventTypeOf(entry: Pick<AuditEntry, 'action' | 'outcome' | 'targetType'>): EventType | null {
  if (entry.outcome === 'denied' || entry.outcome === 'violation') return null;
  if (entry.action === 'deployment.create' && entry.targetType !== 'deployment') return null;
  return EVENT_OF_ACTION[entry.action] ?? null;
}

/** True when `type` is an event type or `*` (a subscription's or a stream's filter). */
export const isEventFilter = (type: string): boolean =>
  type === '*' || (EVENT_TYPES as readonly string[]).includes(type);
