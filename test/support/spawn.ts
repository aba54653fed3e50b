/**
 * The one way the test platform, the fault suite and the scripts start a process of their own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sleep } from './eventually';

/** The repository root: every child runs there. */
export const ROOT = path.resolve(__dirname, '../..');

/** How a TypeScript entry point runs: compiled (`dist/<entry>.js`, as production) or from source through tsx. */
export type Runtime = 'dist' | 'tsx';

/** What every child inherits from this process: finding programs, a home for caches, temp files, time zone, text encoding. */
const INHERITED = ['PATH', 'HOME', 'TMPDIR', 'TZ', 'LANG'] as const;

/**
 * The environment of every child, by one rule: the parent's `PATH`, `HOME`, `TMPDIR`, `TZ` and `LANG`
 * (those it has), plus exactly `vars`. Never the parent's whole environment: a `DATABASE_URL`,
 * `JWT_SECRET`, `PORT` or `NODE_OPTIONS` (a debugger, a loader) of whoever runs the suite or the
 * script cannot reach a child by accident; what a child needs is passed by name.
 */
export function childEnvironment(vars: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {};
  for (const name of INHERITED) {
    const value = process.env[name];
    if (value !== undefined) base[name] = value;
  }
  return { ...base, ...vars };
}

/**
 * The command that runs `entry` (a path below the root without extension, e.g. `src/api/main`) with
 * `runtime` as ONE process: `node dist/…js`, or `node --import tsx …ts` (the `tsx` command would put a
 * wrapper process in front, whose pid is not the one doing the work and whose SIGKILL leaves the real
 * one running).
 */
export function nodeEntry(
  runtime: Runtime,
  entry: string,
  opts: { nodeArgs?: string[]; args?: string[] } = {},
): { command: string; args: string[] } {
  const script = runtime === 'dist' ? path.join(ROOT, 'dist', `${entry}.js`) : path.join(ROOT, `${entry}.ts`);
  return {
    command: process.execPath,
    args: [
      ...(runtime === 'tsx' ? ['--import', 'tsx'] : []),
      ...(opts.nodeArgs ?? []),
      script,
      ...(opts.args ?? []),
    ],
  };
}

/** How {@link spawnChild} starts a process. */
export interface SpawnOptions {
  /** Names the process in messages. */
  name: string;
  command: string;
  args?: string[];
  /** The variables the child gets on top of the inherited base (see {@link childEnvironment}). */
  env: Record<string, string>;
  /** A process group of its own: `kill()` and `stop()` then signal every process the child started. */
  group?: boolean;
  /**
   * Appends the output to this file, straight from the child (it never passes through this process,
   * whose CPU a benchmark counts); kept in memory when absent.
   */
  logFile?: string;
  /** Resolves once the output holds this text, or once this returns true (errors count as "not yet"). */
  ready?: string | ((child: Child) => Promise<boolean>);
  /** How long `ready` may take (120 s); the child is killed when it is not ready by then. */
  readyTimeoutMs?: number;
  /** How often `ready` is checked (100 ms). */
  readyEveryMs?: number;
  /** Called once the process is spawned, before it is ready. */
  onStart?: (child: Child) => void;
}

/** A process started by {@link spawnChild}. */
export interface Child {
  name: string;
  pid: number;
  process: ChildProcess;
  /** Resolves with the exit code (or the signal's name) when the process has ended. */
  exited: Promise<number | string>;
  running(): boolean;
  /** Everything it printed (read from its log file when it has one). */
  output(): string;
  /** Sends `signal` (to its whole group when it has one) and resolves once it has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs` (15 s); resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts a process in the repository root with {@link childEnvironment}; resolves once it is ready. */
export async function spawnChild(opts: SpawnOptions): Promise<Child> {
  const fd = opts.logFile === undefined ? undefined : openSync(opts.logFile, 'a');
  const child = spawn(opts.command, opts.args ?? [], {
    cwd: ROOT,
    env: childEnvironment(opts.env),
    stdio: fd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', fd, fd],
    detached: opts.group ?? false,
  });
  if (fd !== undefined) closeSync(fd);
  let captured = '';
  child.stdout?.on('data', (d: Buffer) => (captured += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (captured += d.toString()));
  let gone = false;
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      gone = true;
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  const output = (): string => (opts.logFile === undefined ? captured : readFileSync(opts.logFile, 'utf8'));
  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    if (gone) return;
    if (opts.group) process.kill(-child.pid!, signal);
    else child.kill(signal);
    await exited;
  };
  const handle: Child = {
    name: opts.name,
    pid: child.pid!,
    process: child,
    exited,
    running: () => !gone,
    output,
    kill,
    async stop(graceMs = 15_000) {
      if (gone) return;
      const timer = setTimeout(() => void kill('SIGKILL'), graceMs);
      await kill('SIGTERM');
      clearTimeout(timer);
    },
  };
  opts.onStart?.(handle);
  if (opts.ready !== undefined)
    await untilReady(handle, opts.ready, opts.readyTimeoutMs ?? 120_000, opts.readyEveryMs ?? 100);
  return handle;
}

/** Waits until `child` is ready; fails (with its last output) when it exits first or takes too long. */
async function untilReady(
  child: Child,
  ready: string | ((child: Child) => Promise<boolean>),
  timeoutMs: number,
  everyMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const tail = (): string => child.output().slice(-3000);
  for (;;) {
    const ok =
      typeof ready === 'string' ? child.output().includes(ready) : await ready(child).catch(() => false);
    if (ok) return;
    if (!child.running())
      throw new Error(`${child.name} exited (${await child.exited}) before it was ready:\n${tail()}`);
    if (Date.now() > deadline) {
      await child.kill('SIGKILL');
      throw new Error(`${child.name} not ready after ${timeoutMs} ms:\n${tail()}`);
    }
    await sleep(everyMs);
  }
}
