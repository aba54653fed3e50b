// A webhook target's receiver, runnable as it is: verifies each request from the platform (Standard
// Webhooks, with the target's secret), answers 202, "does the work" (waits WORK_MS), then calls back,
// signed, with {"status": "succeeded", "external_url": …}.
//
//   IDP_SIGNING_SECRET=whsec_… PORT=9000 WORK_MS=1000 node examples/webhook-receiver.mjs
//
// Needs the `standardwebhooks` package (a dependency of the platform, so it is there after `npm ci`).
import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';

const secret = process.env.IDP_SIGNING_SECRET;
if (!secret) throw new Error('set IDP_SIGNING_SECRET to the target secret (whsec_…)');
const wh = new Webhook(secret);
const port = Number(process.env.PORT ?? 9000);
const workMs = Number(process.env.WORK_MS ?? 1000);

async function callBack(url, body) {
  const payload = JSON.stringify(body);
  const id = `cb-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const at = new Date();
  const res = await fetch(url, {
    method: 'POST',
    body: payload,
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': wh.sign(id, at, payload),
    },
  });
  console.log(`callback ${body.status} -> ${res.status}`);
}

createServer(async (req, res) => {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  let job;
  try {
    job = wh.verify(raw, req.headers);
  } catch (err) {
    console.log(`refused an unsigned or badly signed request: ${err.message}`);
    res.writeHead(401).end();
    return;
  }
  console.log(`${job.type} ${job.job_id} (attempt ${job.attempt}, webhook-id ${req.headers['webhook-id']})`);
  res.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":true}');
  if (job.type === 'deployment.cancel') return;
  await callBack(job.callback_url, { status: 'in_progress', detail: 'working on it' });
  await new Promise((r) => setTimeout(r, workMs));
  const where = job.deployment ? `deploys/${job.deployment.id}` : `environments/${job.environment.id}`;
  await callBack(job.callback_url, {
    status: 'succeeded',
    detail: `${job.type} done`,
    external_url: `https://console.example.com/${where}`,
  });
}).listen(port, '127.0.0.1', () => console.log(`receiver listening on http://127.0.0.1:${port}/`));
