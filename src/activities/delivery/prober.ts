/**
 * Verification after a rollout: HTTP probes of the environment's URL, one every interval, counted
 * against the failures allowed. Progress is the activity's heartbeat, so a verification whose worker
 * is lost resumes where it was on another worker instead of starting over.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeliveryPlan } from '../../workflows/contract';

export type ProbePlan = NonNullable<DeliveryPlan['verification']>;

/** Where a verification stands (the heartbeat's details). */
export interface ProbeProgress {
  done: number;
  failures: number;
  lastFailure: string | null;
}

/** How a verification ended. */
export type Verdict = { ok: true; detail: string } | { ok: false; message: string };

/** The longest one probe waits for an answer. */
const PROBE_TIMEOUT_MS = 10_000;

/** One probe: null when it passed, else what went wrong in words that name the URL. */
export async function probe(plan: ProbePlan, signal: AbortSignal): Promise<string | null> {
  const limit = Math.min(plan.intervalMs, PROBE_TIMEOUT_MS);
  try {
    const res = await fetch(plan.url, {
      redirect: 'manual',
      signal: AbortSignal.any([signal, AbortSignal.timeout(limit)]),
    });
    await res.body?.cancel();
    return res.status === plan.expectStatus
      ? null
      : `GET ${plan.url} answered ${res.status} (expected ${plan.expectStatus})`;
  } catch (err) {
    if (signal.aborted) throw err;
    const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    if (e?.name === 'TimeoutError') return `GET ${plan.url} did not answer within ${limit / 1000}s`;
    return `GET ${plan.url} failed: ${e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err)}`;
  }
}

/** The verdict once `progress` is final (or as it stands when too many failed). */
function verdictOf(plan: ProbePlan, p: ProbeProgress): Verdict | null {
  if (p.failures > plan.failuresAllowed) {
    const count =
      plan.failuresAllowed === 0
        ? ''
        : `${p.failures} of ${p.done} probes failed (${plan.failuresAllowed} allowed); last: `;
    return { ok: false, message: `verification failed: ${count}${p.lastFailure}` };
  }
  if (p.done >= plan.probes)
    return { ok: true, detail: `verified: ${p.done - p.failures} of ${p.done} probes of ${plan.url} passed` };
  return null;
}

/**
 * Probes until the plan is done or too many probes failed, starting from `from` (a heartbeat of an
 * earlier attempt); `beat` records progress and keeps the activity alive.
 */
export async function verify(
  plan: ProbePlan,
  from: ProbeProgress | undefined,
  beat: (p: ProbeProgress) => void,
  signal: AbortSignal,
): Promise<Verdict> {
  const progress: ProbeProgress = from ?? { done: 0, failures: 0, lastFailure: null };
  for (;;) {
    const verdict = verdictOf(plan, progress);
    if (verdict) return verdict;
    // In steps Node's timers can take (at most 24.8 days each).
    for (let left = progress.done > 0 ? plan.intervalMs : 0; left > 0; left -= 2 ** 31 - 1)
      await sleep(Math.min(left, 2 ** 31 - 1), undefined, { signal });
    const failure = await probe(plan, signal);
    progress.done += 1;
    if (failure) {
      progress.failures += 1;
      progress.lastFailure = failure;
    }
    beat({ ...progress });
  }
}
