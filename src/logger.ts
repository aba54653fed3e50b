import pino, { type DestinationStream, type Logger } from 'pino';

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

/** Where a logger keeps its component: on the logger (children inherit it), never in its bindings. */
const COMPONENT = Symbol('idp.logger.component');

type WithComponent = Logger & { [COMPONENT]?: string };
type ChildFn = (this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => WithComponent;

export interface LoggerOptions {
  /** What the process (or part of it) is: `api`, `worker`, `dev`… */
  component?: string;
  /** Where lines go; stdout when absent. Tests pass a stream to read the raw lines. */
  destination?: DestinationStream;
}

/**
 * Creates the JSON logger every process uses. `component` appears at most once per line: pino
 * appends a child's bindings to its parent's, so `child({ component })` under a logger that has
 * one would write the key twice. Here `component` is held by the logger and written by a mixin
 * instead, so a child's `component` replaces its parent's, and a `component` passed with one call
 * replaces the logger's for that line.
 */
export function createLogger(level: string, options: LoggerOptions = {}): Logger {
  const settings = {
    level,
    redact: { paths: REDACT, censor: '[redacted]' },
    mixin: (_merge: object, _level: number, logger: WithComponent) => {
      const component = logger[COMPONENT];
      return component === undefined ? {} : { component };
    },
  };
  const root = (options.destination ? pino(settings, options.destination) : pino(settings)) as WithComponent;
  if (options.component !== undefined) root[COMPONENT] = options.component;
  // pino's child() creates the child with Object.create(parent), so every descendant inherits this
  // override and no child anywhere can put `component` into its bindings.
  const pinoChild = root.child as unknown as ChildFn;
  const child: ChildFn = function (bindings, childOptions) {
    const { component, ...rest } = bindings;
    const made = pinoChild.call(this, rest, childOptions);
    if (component !== undefined) made[COMPONENT] = String(component);
    return made;
  };
  Object.defineProperty(root, 'child', { value: child, writable: true, configurable: true });
  return root;
}

export type { DestinationStream, Logger };
