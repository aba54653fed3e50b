/** Stops what global-setup started, newest first. */
export default async function globalTeardown(): Promise<void> {
  const cleanups = (globalThis as { __idpCleanups?: (() => Promise<void>)[] }).__idpCleanups ?? [];
  for (const cleanup of cleanups) await cleanup().catch((err: unknown) => console.error('teardown:', err));
}
