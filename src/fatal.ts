import { ConfigError } from './config';

/**
 * Ends a process whose start failed: a {@link ConfigError} is printed as its message alone (one line
 * per problem, nothing for the user to dig through), anything else with its stack (a bug to report).
 */
export function exitOnStartFailure(err: unknown): never {
  const text =
    err instanceof ConfigError
      ? err.message
      : err instanceof Error
        ? (err.stack ?? err.message)
        : String(err);
  console.error(text);
  process.exit(1);
}
