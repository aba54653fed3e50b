/**
 * Runs a command target's executable: in a fresh temporary folder, in a process group of its own,
 * with exactly the environment it is given and the job on stdin. Cancellation and the timeout send
 * SIGTERM to the whole group, then SIGKILL after the grace, so nothing it started outlives it.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** How long a command gets between SIGTERM and SIGKILL. */
export const KILL_GRACE_MS = 10_000;

export interface CommandSpec {
  /** The executable's absolute path. */
  file: string;
  args: string[];
  /** The whole environment of the process (nothing else is passed); `HOME` is set to its folder. */
  env: Record<string, string>;
  stdin: string;
  timeoutMs: number;
  /** Aborted on cancellation (or the worker's shutdown). */
  signal: AbortSignal;
  onOutput(chunk: Buffer): void;
  graceMs?: number;
}

export interface CommandResult {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, if any. */
  killedBy: string | null;
  /** Why the platform stopped it, if it did. */
  stopped: 'timeout' | 'cancelled' | null;
  /** The last non-empty line it wrote to stderr. */
  lastStderrLine: string;
}

/** Node's timers take at most 2^31 - 1 ms (24.8 days); longer ones would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `fn` after `ms`, however long; answers how to cancel it. */
export function longTimeout(fn: () => void, ms: number): () => void {
  let timer: NodeJS.Timeout;
  const arm = (left: number): void => {
    timer = setTimeout(
      () => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fn()),
      Math.min(left, MAX_TIMER_MS),
    );
  };
  arm(ms);
  return () => clearTimeout(timer);
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // the group is gone already
  }
}

/** Runs the command to its end (or until stopped); never throws for the command's own failure. */
export async function runCommand(spec: CommandSpec): Promise<CommandResult> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'idp-job-'));
  try {
    return await runIn(home, spec);
  } finally {
    await rm(home, { recursive: true, force: true }).catch(() => undefined);
  }
}

function runIn(home: string, spec: CommandSpec): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(spec.file, spec.args, {
      cwd: home,
      env: { ...spec.env, HOME: home },
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderrTail = '';
    let stopped: CommandResult['stopped'] = null;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (why: 'timeout' | 'cancelled'): void => {
      if (stopped || child.pid === undefined) return;
      stopped = why;
      signalGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), spec.graceMs ?? KILL_GRACE_MS);
    };
    const cancelTimeout = longTimeout(() => stop('timeout'), spec.timeoutMs);
    const onAbort = (): void => stop('cancelled');
    spec.signal.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (d: Buffer) => spec.onOutput(d));
    child.stderr.on('data', (d: Buffer) => {
      spec.onOutput(d);
      stderrTail = (stderrTail + d.toString('utf8')).slice(-4096);
    });
    child.stdin.on('error', () => undefined); // a command that does not read its stdin
    child.stdin.end(spec.stdin);
    child.once('error', (err) => {
      cancelTimeout();
      spec.signal.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.once('exit', (code, sig) => {
      cancelTimeout();
      spec.signal.removeEventListener('abort', onAbort);
      // Whatever the leader left running in its group goes with it.
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      clearTimeout(killTimer);
      // Output still in the pipes arrives before 'close'; do not wait on a pipe a grandchild holds.
      const done = (): void => {
        const lines = stderrTail
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean);
        resolve({ code, killedBy: sig, stopped, lastStderrLine: lines[lines.length - 1] ?? '' });
      };
      const grace = setTimeout(done, 500);
      child.once('close', () => {
        clearTimeout(grace);
        done();
      });
    });
  });
}
