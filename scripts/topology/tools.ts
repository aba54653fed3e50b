/**
 * The programs the compose stack's images carry, built here from their Go modules at the images'
 * versions: the Temporal server (`temporalio/server:1.29.1`), its SQL tool (`temporal-sql-tool` in
 * `temporalio/admin-tools`) and its schema files, plus the pinned `temporal` CLI. Each is built once
 * into the project's tools folder, as `.ci/run` and the dev runner do for the CLI, and reused.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { findTemporalCli, TEMPORAL_CLI_MODULE, TOOLS_BIN } from '../../src/dev/temporal-server';

const run = promisify(execFile);

/** The server release the compose file's images run. */
export const TEMPORAL_SERVER_VERSION = '1.29.1';
const SERVER_MODULE = 'go.temporal.io/server';

/** The Go toolchain: `GO`, else `go` on PATH, else where `.ci/run` looks for it. */
function goBinary(): string {
  const fromEnv = process.env['GO']?.trim();
  if (fromEnv) return fromEnv;
  const inPath = (process.env['PATH'] ?? '')
    .split(path.delimiter)
    .map((dir) => path.join(dir, 'go'))
    .find((candidate) => existsSync(candidate));
  return inPath ?? '/usr/local/go/bin/go';
}

/** True when `binary` exists and says it is the pinned release (`--version`). */
async function isPinned(binary: string): Promise<boolean> {
  if (!existsSync(binary)) return false;
  try {
    const { stdout, stderr } = await run(binary, ['--version'], { timeout: 30_000 });
    return `${stdout}${stderr}`.includes(TEMPORAL_SERVER_VERSION);
  } catch {
    return false;
  }
}

/**
 * `GOBIN=<tools> go install <target>` (a `module/path@version`), which leaves `name` in the tools
 * folder; answers its path.
 */
async function goInstall(go: string, target: string, name: string, log: (line: string) => void) {
  log(`building ${target} into ${TOOLS_BIN} (a few minutes, once)`);
  await mkdir(TOOLS_BIN, { recursive: true });
  await run(go, ['install', target], {
    env: { ...process.env, GOBIN: TOOLS_BIN },
    maxBuffer: 64 * 1024 * 1024,
  });
  return path.join(TOOLS_BIN, name);
}

/** A program of the server module (`cmd/server`, `cmd/tools/sql`), built unless the pinned release is there. */
async function serverProgram(go: string, name: string, packagePath: string, log: (line: string) => void) {
  const binary = path.join(TOOLS_BIN, name);
  if (await isPinned(binary)) return binary;
  const target = `${SERVER_MODULE}/${packagePath}@v${TEMPORAL_SERVER_VERSION}`;
  await goInstall(go, target, name, log);
  if (!(await isPinned(binary))) throw new Error(`go install ${target} did not leave ${binary}`);
  return binary;
}

/**
 * The pinned `temporal` CLI as the dev runner finds it (src/dev/temporal-server.ts), else built with
 * this script's Go, which need not be on PATH.
 */
async function temporalCli(go: string, log: (line: string) => void): Promise<string> {
  const found = await findTemporalCli(log);
  if (found) return found;
  const built = await goInstall(go, TEMPORAL_CLI_MODULE, 'temporal', log);
  if (!existsSync(built)) throw new Error(`go install ${TEMPORAL_CLI_MODULE} did not leave ${built}`);
  return built;
}

/**
 * The PostgreSQL schema folder of the server module (what admin-tools ships under
 * /etc/temporal/schema/postgresql/v12), from the Go module cache; `go mod download` is a no-op
 * when `go install` already fetched it.
 */
async function schemaRoot(go: string): Promise<string> {
  const serverModule = `${SERVER_MODULE}@v${TEMPORAL_SERVER_VERSION}`;
  const { stdout } = await run(go, ['mod', 'download', '-json', serverModule], { maxBuffer: 1024 * 1024 });
  const dir = (JSON.parse(stdout) as { Dir?: string }).Dir;
  const root = dir && path.join(dir, 'schema', 'postgresql', 'v12');
  if (!root || !existsSync(path.join(root, 'temporal', 'versioned')))
    throw new Error(
      `no PostgreSQL v12 schema in the module cache (go mod download answered ${stdout.trim()})`,
    );
  return root;
}

/** The programs of a run and the PATH under which the compose jobs' scripts find them. */
export interface Toolbox {
  server: string;
  sqlTool: string;
  cli: string;
  schemaRoot: string;
  /**
   * A folder ahead of the inherited PATH holding `temporal-sql-tool` and `temporal` under the names
   * the admin-tools image gives them, so temporal-config/*.sh run unchanged.
   */
  path: string;
}

/** Builds or finds every program; `binDir` (made here) receives the image-named links. */
export async function prepareToolbox(binDir: string, log: (line: string) => void): Promise<Toolbox> {
  const go = goBinary();
  const cli = await temporalCli(go, log);
  const server = await serverProgram(go, 'server', 'cmd/server', log);
  const sqlTool = await serverProgram(go, 'sql', 'cmd/tools/sql', log);
  await mkdir(binDir, { recursive: true });
  await symlink(sqlTool, path.join(binDir, 'temporal-sql-tool'));
  await symlink(cli, path.join(binDir, 'temporal'));
  const inherited = process.env['PATH'] ?? '';
  const missing = ['bash', 'pg_isready'].filter(
    (name) => !inherited.split(path.delimiter).some((dir) => dir && existsSync(path.join(dir, name))),
  );
  if (missing.length)
    throw new Error(`temporal-config/setup-schema.sh needs ${missing.join(' and ')} on PATH`);
  return {
    server,
    sqlTool,
    cli,
    schemaRoot: await schemaRoot(go),
    path: [binDir, inherited].join(path.delimiter),
  };
}
