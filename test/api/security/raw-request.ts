/** A request over a plain socket, for headers that Node's HTTP client refuses to send. */
import type { Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';

/** What came back: the status line's code and the header lines. */
export interface RawResponse {
  status: number;
  /** Lower-case name and value of every header line, in order. */
  headers: [string, string][];
}

/**
 * Sends a request to `server` over a plain socket: Node's http client refuses CR and LF in header
 * values, which is exactly what these requests carry. `headerLines` is sent as given, after Host and
 * Content-*.
 */
export async function rawRequest(
  server: Server,
  method: string,
  path: string,
  headerLines: string,
  body: string,
): Promise<RawResponse> {
  const { port } = server.address() as AddressInfo;
  const payload = Buffer.from(body);
  const head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\n${headerLines}\r\n\r\n`;
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve) => {
    // write, not end: Node's server aborts a request whose client half-closes before the answer.
    const socket = net.connect(port, '127.0.0.1', () =>
      socket.write(Buffer.concat([Buffer.from(head, 'utf8'), payload])),
    );
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A parser refusal may reset the connection after its answer: what arrived is what counts.
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
  const [statusLine = '', ...lines] = (
    Buffer.concat(chunks).toString('utf8').split('\r\n\r\n')[0] ?? ''
  ).split('\r\n');
  return {
    status: Number(statusLine.split(' ')[1]),
    headers: lines.map((line): [string, string] => [
      line.slice(0, line.indexOf(':')).toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  };
}
