/** Waits `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `fn` every `everyMs` until it returns a truthy value, and returns that value; throws after
 * `timeoutMs`, naming `what` (a function is asked only then, so it can describe the last state seen)
 * and the last error `fn` threw. An error is another "not yet": a service that is coming back may
 * refuse a few calls first.
 */
export async function eventually<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  what: string | (() => string) = 'condition',
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const name = typeof what === 'function' ? what() : what;
      throw new Error(`timed out waiting for ${name}${last ? `: ${String(last)}` : ''}`);
    }
    await sleep(everyMs);
  }
}
