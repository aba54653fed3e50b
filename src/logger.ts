import pino, { type Logger } from 'pino';

/** Paths whose values never reach a log line. */
const REDACT = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'password',
  '*.password',
];

/** Creates the JSON logger every process uses. */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { ...base }, redact: { paths: REDACT, censor: '[redacted]' } });
}

export type { Logger };
