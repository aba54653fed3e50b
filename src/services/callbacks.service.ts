/**
 * Targets' callbacks: `POST /api/jobs/:job_id/callback`, signed with the job's target secret
 * (Standard Webhooks). The signature and its timestamp are checked before the body is read; then
 * the report is handed to the job's run, once per `webhook-id`.
 */
import { Webhook } from 'standardwebhooks';
import { CallbackReceipt, Deployment, Environment, Target } from '../domain/entities';
import { AuthenticationError, ConflictError, InputError, NotFoundError } from '../domain/errors';
import { callbackBody, type CallbackBody } from '../domain/targets';
import { callbacksReceived } from '../metrics';
import { isUniqueViolation } from './audit-trail';
import type { ServiceDeps } from './service-deps';
import { verifyingSecrets } from './targets.service';

/** The Standard Webhooks headers of a request. */
export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** How a callback was taken. */
export type CallbackAnswer = 'accepted' | 'duplicate';

function refuse(answer: string, error: Error): never {
  callbacksReceived.inc({ answer });
  throw error;
}

/** The job a callback names and whether it waits for its target now. */
async function findJob(deps: ServiceDeps, jobId: string) {
  const em = deps.orm.em.fork();
  const deployment = await em.findOne(Deployment, { jobId });
  const environment = deployment ? null : await em.findOne(Environment, { jobId });
  if (!deployment && !environment) refuse('not_found', new NotFoundError(`job ${jobId} does not exist`));
  const targetName = deployment ? deployment.target : environment!.target;
  const target = await em.findOne(Target, { name: targetName });
  return {
    target,
    targetName,
    waiting: deployment ? deployment.status === 'in_progress' : environment!.status === 'provisioning',
    status: deployment ? deployment.status : environment!.status,
  };
}

/** Verifies the signature with each secret of the target that may have signed it; 401 when none did. */
function verifySignature(
  deps: ServiceDeps,
  target: Target | null,
  headers: SignatureHeaders,
  raw: Buffer,
): void {
  let reason = "the signature does not match the job's target secret";
  for (const secret of target ? verifyingSecrets(deps, target) : []) {
    try {
      new Webhook(secret).verify(raw, { ...headers }, { jsonParse: false });
      return;
    } catch (err) {
      const message = (err as Error).message;
      if (/timestamp/i.test(message)) reason = 'the webhook-timestamp is more than 5 minutes away from now';
    }
  }
  refuse('unauthorized', new AuthenticationError(reason));
}

function parseReport(raw: Buffer): CallbackBody {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new InputError('the body is not valid JSON', [
      {
        rule: 'json',
        field: 'body',
        message: 'the body could not be parsed as JSON',
        hint: 'send {"status":"succeeded"}',
      },
    ]);
  }
  const parsed = callbackBody.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new InputError(
    'invalid body',
    parsed.error.issues.map((i) => ({
      rule: 'schema',
      field: ['body', ...i.path.map(String)].join('.'),
      message: i.message,
      hint: 'send {"status": "in_progress"|"succeeded"|"failed", "detail"?, "external_url"?}',
    })),
  );
}

/**
 * Takes a target's callback for `jobId`: 401 unless signed by the job's target (its current
 * secret, or the previous one within an hour of a rotation) within 5 minutes; 404 for no such job;
 * the same `webhook-id` again is a duplicate (changes nothing); 409 when the job no longer waits
 * for its target. Otherwise the report goes to the job's run.
 */
export async function receiveCallback(
  deps: ServiceDeps,
  jobId: string,
  headers: Partial<SignatureHeaders>,
  read: () => Promise<Buffer>,
): Promise<CallbackAnswer> {
  const id = headers['webhook-id'];
  if (!id || !headers['webhook-timestamp'] || !headers['webhook-signature'])
    refuse(
      'unauthorized',
      new AuthenticationError(
        'the callback is not signed: send the webhook-id, webhook-timestamp and webhook-signature headers',
      ),
    );
  if (id.length > 255)
    refuse('unauthorized', new AuthenticationError('the webhook-id is longer than 255 characters'));
  const job = await findJob(deps, jobId);
  const raw = await read();
  verifySignature(deps, job.target, headers as SignatureHeaders, raw);
  const report = parseReport(raw);
  const em = deps.orm.em.fork();
  // Taken once per target: the same callback replayed to another job of the target changes nothing.
  if (await em.findOne(CallbackReceipt, { target: job.targetName, webhookId: id })) {
    callbacksReceived.inc({ answer: 'duplicate' });
    return 'duplicate';
  }
  const noLonger = `job ${jobId} is not waiting for its target (it is ${job.status})`;
  if (!job.waiting) refuse('conflict', new ConflictError(noLonger));
  const delivered = await deps.jobs.report(jobId, {
    webhookId: id,
    status: report.status,
    detail: report.detail ?? null,
    externalUrl: report.external_url ?? null,
    receivedAt: new Date().toISOString(),
  });
  if (delivered === 'no-run') refuse('conflict', new ConflictError(noLonger));
  // Kept after the run has it: a receipt lost to a crash here means the same callback, sent again,
  // reaches the run a second time, where the same webhook-id is applied once.
  try {
    em.create(CallbackReceipt, { target: job.targetName, jobId, webhookId: id, status: report.status });
    await em.flush();
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
  }
  callbacksReceived.inc({ answer: 'accepted' });
  return 'accepted';
}
