/**
 * Mints a token signed with the configured secret:
 * `npm run token -- --sub alice --role TEAM_ADMIN --team payments [--ttl 12h]`.
 * Without JWT_SECRET it uses the dev runner's secret under DATA_DIR.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config';
import { ROLES, type Role } from '../domain/types';
import { readDevSecret, signToken } from '../auth/tokens';

function main(): void {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string' },
      role: { type: 'string', multiple: true },
      team: { type: 'string', multiple: true },
      ttl: { type: 'string', default: '12h' },
    },
    strict: true,
  });
  const config = loadConfig();
  const secret = config.JWT_SECRET ?? readDevSecret(config.DATA_DIR);
  if (!secret)
    throw new Error(
      'no JWT_SECRET set and no dev secret under DATA_DIR: run `npm run dev` once or set JWT_SECRET',
    );
  const roles = values.role ?? ['PLATFORM_ADMIN'];
  const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (bad.length) throw new Error(`unknown role(s) ${bad.join(', ')}; use ${ROLES.join(', ')}`);
  process.stdout.write(
    signToken(secret, {
      sub: values.sub ?? 'admin',
      roles: roles as Role[],
      teams: values.team ?? [],
      ttl: values.ttl!,
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
    }) + '\n',
  );
}

try {
  main();
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
