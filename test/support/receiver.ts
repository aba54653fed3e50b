/**
 * A user's system as a webhook target sees it, for real: an HTTP server on loopback that verifies
 * every request's Standard Webhooks signature (the `standardwebhooks` package, as a receiver would
 * use it), answers as it is told, and calls the platform back, signed with the target's secret.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { Body } from './http-client';

/** One request the receiver got. */
export interface Received {
  headers: Record<string, string>;
  body: Body;
  raw: string;
  /** True when the signature verified with the receiver's secret. */
  verified: boolean;
  at: number;
}

/** What the receiver answers to a request: a status and body, or nothing (it hangs up). */
export type Answer = { status: number; body?: unknown } | 'hang-up';

export interface Receiver {
  url: string;
  /** Every request, in order. */
  received: Received[];
  /** The secret the receiver verifies with (the target's, set once the target exists). */
  secret: string | undefined;
  /** How the next requests are answered (default 202), and what is done before answering. */
  answer: (req: Received) => Answer | Promise<Answer>;
  /** Waits for the `n`-th request (1-based) whose body type is `type`. */
  waitFor(type: string, n?: number, timeoutMs?: number): Promise<Received>;
  close(): Promise<void>;
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts a receiver on 127.0.0.1 (a port of its own). */
export async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = {
    url: '',
    received: [],
    secret: undefined,
    answer: () => ({ status: 202, body: { accepted: true } }),
    async waitFor(type, n = 1, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = receiver.received.filter((r) => r.body['type'] === type);
        if (found.length >= n) return found[n - 1]!;
        if (Date.now() > deadline)
          throw new Error(
            `receiver: no ${n}th ${type} within ${timeoutMs} ms (got ${receiver.received.length} requests)`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: async () => undefined,
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = await readAll(req);
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]),
    );
    let verified = false;
    try {
      if (receiver.secret) {
        new Webhook(receiver.secret).verify(raw, headers);
        verified = true;
      }
    } catch {
      verified = false;
    }
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      body = {};
    }
    const got: Received = { headers, body, raw, verified, at: Date.now() };
    receiver.received.push(got);
    const answer = await receiver.answer(got);
    if (answer === 'hang-up') {
      req.socket.destroy();
      return;
    }
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

/** Options of a callback: who signs it and how (defaults: a fresh id, now, the given secret). */
export interface CallbackOptions {
  webhookId?: string;
  /** Unix seconds of the signature's timestamp (default now). */
  timestamp?: number;
  /** Leave the signature headers out. */
  unsigned?: boolean;
  /** Replace the signature by this value. */
  signature?: string;
}

/**
 * Calls the platform back as a target does: POSTs `body` to `url` (a job's `callback_url`), signed
 * with `secret`. Answers the status and the parsed body.
 */
export async function callBack(
  url: string,
  secret: string,
  body: unknown,
  opts: CallbackOptions = {},
): Promise<{ status: number; body: Body }> {
  const payload = JSON.stringify(body);
  const id = opts.webhookId ?? `cb_${Math.random().toString(36).slice(2)}`;
  const at = new Date((opts.timestamp ?? Math.floor(Date.now() / 1000)) * 1000);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (!opts.unsigned) {
    headers['webhook-id'] = id;
    headers['webhook-timestamp'] = String(Math.floor(at.getTime() / 1000));
    headers['webhook-signature'] = opts.signature ?? new Webhook(secret).sign(id, at, payload);
  }
  const res = await fetch(url, { method: 'POST', headers, body: payload });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}
