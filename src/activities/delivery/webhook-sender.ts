/**
 * Signed requests to webhook targets (Standard Webhooks, through the `standardwebhooks` package)
 * and what their answers mean: 2xx accepted (or completed, with a JSON `status`), 408/429/5xx and
 * connection errors retried by the activity's retry policy, any other 4xx a permanent failure.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { Webhook } from 'standardwebhooks';
import { syncCompletion } from '../../domain/targets';
import type { DeliveryOutcome } from '../../workflows/contract';

/** How long one request may take before it counts as a connection error (and is retried). */
export const REQUEST_TIMEOUT_MS = 10_000;

/** The largest answer body read (for a synchronous completion). */
const MAX_ANSWER_BYTES = 64 * 1024;

/** The headers that sign `payload` as message `id` with `secret`, now. */
export function signedHeaders(secret: string, id: string, payload: string): Record<string, string> {
  const at = new Date();
  return {
    'content-type': 'application/json',
    'user-agent': 'idp-delivery/1',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, payload),
  };
}

const RETRYABLE = (status: number): boolean => status === 408 || status === 429 || status >= 500;

/** The error's own words, with its cause's (undici puts the socket error there). */
function networkError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `no answer within ${REQUEST_TIMEOUT_MS / 1000}s`;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e?.message ?? 'error'} (${cause})` : (e?.message ?? String(err));
}

/** The answer's body, read up to {@link MAX_ANSWER_BYTES} (a longer one is no completion: empty). */
async function readAnswer(res: Response): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) {
      await res.body.cancel().catch(() => undefined);
      return '';
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * POSTs `body` to `url`, signed as message `id`. Resolves with the target's verdict on a 2xx;
 * throws a retryable error for a status or failure worth retrying, and a non-retryable one
 * naming the status for any other answer.
 */
export async function postSigned(
  target: string,
  url: string,
  secret: string,
  id: string,
  body: unknown,
  signal: AbortSignal,
): Promise<DeliveryOutcome> {
  const payload = JSON.stringify(body);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: signedHeaders(secret, id, payload),
      body: payload,
      redirect: 'manual',
      signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
    });
  } catch (err) {
    if (signal.aborted) throw err;
    throw ApplicationFailure.retryable(
      `target '${target}' could not be reached: ${networkError(err)}`,
      'TargetUnreachable',
    );
  }
  const text = await readAnswer(res).catch(() => '');
  if (res.status >= 200 && res.status < 300) {
    let verdict: unknown;
    try {
      verdict = text ? JSON.parse(text) : undefined;
    } catch {
      verdict = undefined;
    }
    const done = syncCompletion.safeParse(verdict);
    if (!done.success) return { status: 'accepted', at: Date.now() };
    return {
      status: done.data.status,
      detail: done.data.detail ?? `target '${target}' reported ${done.data.status} at once`,
      externalUrl: done.data.external_url ?? null,
    };
  }
  const message = `target '${target}' answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  if (RETRYABLE(res.status)) throw ApplicationFailure.retryable(message, 'TargetRetry');
  throw ApplicationFailure.nonRetryable(
    `${message}; not retried (only 408, 429 and 5xx are)`,
    'TargetRefused',
  );
}
