/**
 * Log capture for the security files: the real `createLogger` (production's level, redaction and
 * component mixin) with only its destination swapped for memory, so a test reads every line the API
 * and the worker of its stack wrote. A file installs it before anything loads the logger (jest hoists
 * the call above the imports):
 *
 *     jest.mock('../../../src/logger', () =>
 *       jest.requireActual<typeof import('./log-capture')>('./log-capture').capturingLoggerModule(),
 *     );
 *
 * `jest.requireActual` and the file's own `import` share the file's module registry, so the
 * {@link capturedLines} the file imports is the array the mocked loggers write to.
 */
import type * as LoggerModule from '../../../src/logger';

/** Every raw line written by a logger made since the mock was installed, in order. */
export const capturedLines: string[] = [];

/** The logger module with `createLogger` writing to {@link capturedLines}: the factory of the mock. */
export function capturingLoggerModule(): typeof LoggerModule {
  // Not imported: this module is loaded by the mock's factory, before the real logger may be.
  const actual = jest.requireActual<typeof LoggerModule>('../../../src/logger');
  return {
    ...actual,
    createLogger: (level, options = {}) =>
      actual.createLogger(level, {
        ...options,
        destination: { write: (line: string) => void capturedLines.push(line) },
      }),
  };
}

/** {@link capturedLines}, parsed. */
export const logLines = (): Record<string, unknown>[] =>
  capturedLines.map((line) => JSON.parse(line) as Record<string, unknown>);
