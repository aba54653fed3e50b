import { connect, createServer, type Server } from 'node:net';

/** Listens on 127.0.0.1:`port` (0: any free one); undefined when it is taken. */
function bind(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/**
 * `count` different ports free on 127.0.0.1, each with `port + offset` free too for every offset in
 * `alsoFree` (the Temporal dev server's UI listens on its port + 1000). Chosen by the system, so two
 * suites running at once (another engineer's, or the tests' own Temporal) never pick the same one.
 */
export async function freePorts(count: number, alsoFree: number[] = []): Promise<number[]> {
  const held: Server[] = [];
  const ports: number[] = [];
  try {
    while (ports.length < count) {
      const first = (await bind(0))!;
      held.push(first);
      const port = (first.address() as { port: number }).port;
      const others = await Promise.all(
        alsoFree.map((offset) => (port + offset < 65536 ? bind(port + offset) : Promise.resolve(undefined))),
      );
      held.push(...others.filter((s): s is Server => s !== undefined));
      if (others.every(Boolean)) ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  }
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
