import { randomUUID } from 'node:crypto';

/** Makes a name no other test uses. */
export const uniq = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;
