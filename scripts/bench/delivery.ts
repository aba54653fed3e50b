/**
 * Bench phase: a deployment through a webhook target whose receiver calls back at once (trigger,
 * signed dispatch, 202, signed callback, `succeeded`) beside a deployment through the simulated
 * target, one at a time, alternating: what the round trip through a real system costs.
 */
import { randomUUID } from 'node:crypto';
import { createService, provisionOn, waitForEnvironment } from '../../test/support/fixtures';
import { HttpClient } from '../../test/support/http-client';
import type { Platform } from '../../test/support/platform';
import { callBack, startReceiver } from '../../test/support/receiver';
import { details, figure, pct, round } from './figures';

/** Trigger → `succeeded`, in ms, read from the workflow's result (no polling). */
async function timedDeploy(
  p: Platform,
  api: HttpClient,
  serviceId: number,
  envId: number,
  version: string,
): Promise<number> {
  const t0 = process.hrtime.bigint();
  const d = await api.must('POST', `/api/services/${serviceId}/environments/${envId}/deployments`, 202, {
    version,
  });
  const result = (await p.temporal.workflow.getHandle(d.job_id).result()) as { status: string };
  if (result.status !== 'succeeded') throw new Error(`${d.job_id} ended ${result.status}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** The callback figure (needs a worker). */
export async function measureCallbacks(p: Platform, token: string, samples: number): Promise<void> {
  const api = new HttpClient(p.apiUrl, token);
  const receiver = await startReceiver();
  try {
    const target = await api.must('POST', '/api/targets', 201, {
      name: `bench-hook-${randomUUID().slice(0, 8)}`,
      kind: 'webhook',
      config: { url: receiver.url },
    });
    const secret: string = target.signing_secret;
    receiver.secret = secret;
    receiver.answer = (req) => {
      if (req.body['type'] === 'environment.provision') return { status: 200, body: { status: 'succeeded' } };
      // Accept, then call back at once (as a receiver that finishes quickly would).
      if (req.body['type'] === 'deployment.deploy')
        setImmediate(
          () =>
            void callBack(req.body['callback_url'], secret, { status: 'succeeded' }).catch(() => undefined),
        );
      return { status: 202 };
    };
    const service = await createService(api);
    const hooked = await provisionOn(api, service.id, target.name, 'dev', { name: 'hooked' });
    const plain = await provisionOn(api, service.id, 'simulated', 'dev', { name: 'plain' });
    await waitForEnvironment(api, service.id, hooked.id);
    await waitForEnvironment(api, service.id, plain.id);
    const hookMs: number[] = [];
    const simMs: number[] = [];
    for (let i = 0; i < samples + 3; i++) {
      const h = await timedDeploy(p, api, service.id, hooked.id, `1.0.${i}`);
      const s = await timedDeploy(p, api, service.id, plain.id, `1.0.${i}`);
      // The first three warm both paths up.
      if (i >= 3) {
        hookMs.push(h);
        simMs.push(s);
      }
    }
    figure(
      'webhook dispatch → callback → succeeded p50 (÷ simulated trigger → succeeded)',
      'ms',
      pct(hookMs, 50),
      pct(simMs, 50),
      { op: '<=', limit: 1.2 },
    );
    details['callbacks'] = { webhook_ms: hookMs.map(round), simulated_ms: simMs.map(round) };
  } finally {
    await receiver.close();
  }
}
