/**
 * Free loopback ports, and processes run to their end: the compose stack's one-shot jobs
 * (temporal-config/*.sh, as plain bash children), the build and the migration.
 */
import { randomInt } from 'node:crypto';
import { createServer, type AddressInfo, type Server } from 'node:net';
import path from 'node:path';
import { ROOT, spawnChild, type Child, type SpawnOptions } from '../../test/support/spawn';

/** Listens on 127.0.0.1:`port` (0: any); answers the listener, or undefined when the port is taken. */
async function listen(port: number): Promise<Server | undefined> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/**
 * `count` distinct ports free on 127.0.0.1 right now: any the system hands out, or random ones in
 * `range` (inclusive). Every listener is held until all are known, so no port is answered twice;
 * another program may still take one before its user binds it.
 */
export async function freePorts(count: number, range?: [number, number]): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let attempt = 0; servers.length < count; attempt++) {
      if (attempt > count * 50)
        throw new Error(`no ${count} free ports in ${range?.join('-') ?? 'any range'}`);
      const server = await listen(range ? randomInt(range[0], range[1] + 1) : 0);
      if (server) servers.push(server);
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/**
 * Runs a process to its end and resolves with its output once it exited 0; fails with the output's
 * tail otherwise, and SIGKILLs it after `timeoutMs`.
 */
export async function runToEnd(opts: SpawnOptions & { timeoutMs: number }): Promise<string> {
  const child = await spawnChild(opts);
  const timer = setTimeout(() => void child.kill('SIGKILL'), opts.timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== 0)
    throw new Error(
      `${opts.name} ended with ${code === 'SIGKILL' ? `SIGKILL (over ${opts.timeoutMs} ms)` : code}:\n${child.output().slice(-3000)}`,
    );
  return child.output();
}

/** How {@link runJob} runs one of temporal-config's scripts. */
export interface JobOptions {
  /** Names the job in messages and its log file (`<logDir>/<name>.log`). */
  name: string;
  /** The script, relative to the repository root (e.g. `temporal-config/setup-schema.sh`). */
  script: string;
  /** Its environment on top of the inherited base (PATH included, when it must differ). */
  env: Record<string, string>;
  logDir: string;
  timeoutMs: number;
  /** Called with the child once spawned (the caller stops it on Ctrl-C). */
  onStart?: (child: Child) => void;
}

/**
 * Runs a compose job's script with bash, as its admin-tools container does (`entrypoint: /bin/bash`);
 * resolves with its output once it exited 0.
 */
export async function runJob(opts: JobOptions): Promise<string> {
  return runToEnd({
    name: opts.name,
    command: 'bash',
    args: [path.join(ROOT, opts.script)],
    env: opts.env,
    logFile: path.join(opts.logDir, `${opts.name}.log`),
    timeoutMs: opts.timeoutMs,
    onStart: opts.onStart,
  });
}
