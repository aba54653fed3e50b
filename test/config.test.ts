/**
 * A bad environment stops every entry point with one line per problem and no stack trace: the
 * entry points run as the user runs them (`tsx`), with an environment of their own.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config';

const ROOT = path.resolve(__dirname, '..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

describe('loadConfig', () => {
  it('names every bad variable on a line of its own', () => {
    expect(() => loadConfig({ PORT: 'abc', LOG_LEVEL: 'loud' })).toThrow(ConfigError);
    try {
      loadConfig({ PORT: 'abc', LOG_LEVEL: 'loud' });
    } catch (err) {
      const lines = (err as Error).message.split('\n');
      expect(lines[0]).toBe('invalid configuration:');
      expect(lines.filter((l) => /^ {2}PORT: /.test(l))).toHaveLength(1);
      expect(lines.filter((l) => /^ {2}LOG_LEVEL: /.test(l))).toHaveLength(1);
    }
  });
});

describe.each(['src/dev/runner.ts', 'src/api/main.ts', 'src/worker/main.ts', 'src/cli/migrate.ts'])(
  '%s with PORT=abc',
  (entry) => {
    it('prints the problem in one line, no stack, and exits 1', () => {
      const run = spawnSync(TSX, [entry], {
        cwd: ROOT,
        env: {
          PATH: process.env['PATH'],
          HOME: process.env['HOME'],
          PORT: 'abc',
          DATA_DIR: path.join(ROOT, '.data/config-test'),
        },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('invalid configuration:');
      expect(run.stderr).toMatch(/^ {2}PORT: .+$/m);
      expect(run.stderr).not.toMatch(/^\s+at /m);
      expect(run.stderr).not.toContain('ConfigError');
    });
  },
);

describe.each(['src/api/main.ts', 'src/worker/main.ts'])('%s without IDP_ENCRYPTION_KEY', (entry) => {
  it('refuses to start, naming the key, and exits 1', () => {
    const run = spawnSync(TSX, [entry], {
      cwd: ROOT,
      env: {
        PATH: process.env['PATH'],
        HOME: process.env['HOME'],
        JWT_SECRET: 'x'.repeat(40),
        DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
        TEMPORAL_ADDRESS: '127.0.0.1:1',
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^ {2}IDP_ENCRYPTION_KEY: required/m);
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it('refuses a key that is not 32 bytes of base64', () => {
    expect(() => loadConfig({ IDP_ENCRYPTION_KEY: 'c2hvcnQ=' })).toThrow(
      /IDP_ENCRYPTION_KEY: must be 32 bytes/,
    );
  });
});
