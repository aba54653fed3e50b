/**
 * Delivery targets: where an environment's provisioning and deployments are sent. Their kinds, the
 * config each kind takes, an environment's verification, and the job document a target receives
 * (the webhook body; a command's stdin). Pure: the API validates with it, the worker builds with it.
 */
import { z } from 'zod';
import { durationSeconds, policyDuration } from './durations';

/** The kinds of target. */
export const TARGET_KINDS = ['simulated', 'webhook', 'command'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

/** The seeded default target. */
export const DEFAULT_TARGET = 'simulated';

/** Target names: `[a-z][a-z0-9-]{0,62}`. */
export const targetName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,62}$/, 'a lower-case letter, then lower-case letters, digits and dashes (1-63)');

/** An absolute http(s) URL without credentials, at most 2048 characters. */
export const httpUrl = z
  .string()
  .max(2048)
  .refine(
    (s) => {
      try {
        const u = new URL(s);
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '';
      } catch {
        return false;
      }
    },
    {
      message: 'not an http(s) URL',
      params: { hint: 'give an absolute http:// or https:// URL without user info' },
    },
  );

/** An executable's file name in the worker's commands folder: no `/`, no `..`. */
const commandName = z
  .string()
  .min(1)
  .max(255)
  .refine((s) => /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(s) && !s.includes('..'), {
    message: 'a file name in the worker\'s DRIVER_COMMANDS_DIR: no "/", no ".."',
    params: {
      hint: 'name the executable only, e.g. "helm-upgrade"; put it in DRIVER_COMMANDS_DIR on the workers',
    },
  });

/** Config per target kind (strict: an unknown key is refused). */
export const TARGET_CONFIG_SCHEMAS = {
  simulated: z.strictObject({ delay_ms: z.number().int().min(0).max(600_000).optional() }),
  webhook: z.strictObject({ url: httpUrl, timeout: policyDuration.optional() }),
  command: z.strictObject({
    command: commandName,
    args: z.array(z.string().max(1024)).max(50).optional(),
    timeout: policyDuration.optional(),
  }),
} as const;

export type WebhookConfig = z.infer<typeof TARGET_CONFIG_SCHEMAS.webhook>;
export type CommandConfig = z.infer<typeof TARGET_CONFIG_SCHEMAS.command>;

/** How long a kind waits for its work by default: a webhook's callback 1 h, a command 30 min. */
const DEFAULT_TIMEOUT: Record<TargetKind, string> = { simulated: '1h', webhook: '1h', command: '30m' };

/** A target's timeout as configured (`"1h"`) and in seconds. */
export function targetTimeout(
  kind: TargetKind,
  config: Record<string, unknown>,
): { text: string; seconds: number } {
  const given = config['timeout'];
  const value = typeof given === 'string' || typeof given === 'number' ? given : DEFAULT_TIMEOUT[kind];
  return { text: typeof value === 'number' ? `${value}s` : value, seconds: durationSeconds(value) };
}

/** An environment's verification after rollout (see the contract), as stored. */
export const verificationSchema = z.strictObject({
  http: z.strictObject({
    url: httpUrl,
    expect_status: z.number().int().min(100).max(599).optional(),
  }),
  duration: policyDuration.optional(),
  interval: policyDuration.optional(),
  failures_allowed: z.number().int().min(0).max(1000).optional(),
});
export type Verification = z.infer<typeof verificationSchema>;

/** A verification's plan: what to probe, how often, how many probes, how many may fail. */
export interface ProbePlan {
  url: string;
  expectStatus: number;
  intervalMs: number;
  probes: number;
  failuresAllowed: number;
}

/** The probes a verification makes: one every `interval` for `duration` (at least one). */
export function probePlan(v: Verification): ProbePlan {
  const interval = durationSeconds(v.interval ?? '5s');
  const duration = durationSeconds(v.duration ?? '60s');
  return {
    url: v.http.url,
    expectStatus: v.http.expect_status ?? 200,
    intervalMs: interval * 1000,
    probes: Math.max(1, Math.floor(duration / interval)),
    failuresAllowed: v.failures_allowed ?? 0,
  };
}

/** What a job does at its target. */
export type TargetAction = 'provision' | 'deploy' | 'cancel';

/** The job document a target receives (the webhook body without `callback_url` and `attempt`). */
export interface JobDocument {
  type: 'environment.provision' | 'deployment.deploy' | 'deployment.cancel';
  job_id: string;
  service: { id: number; name: string; team: string | null };
  environment: { id: number; name: string; tier: string; config: Record<string, unknown> };
  deployment?: {
    id: number;
    version: string;
    config: Record<string, unknown>;
    kind: string;
    requested_by: string;
    initiated_by: string | null;
  };
}

/** The event type a target receives for `action` of a job of `resource`. */
export function jobEventType(action: TargetAction): JobDocument['type'] {
  return action === 'provision'
    ? 'environment.provision'
    : action === 'deploy'
      ? 'deployment.deploy'
      : 'deployment.cancel';
}

/** The `webhook-id` of an outbound request: `<job_id>:<action>`, the same on every retry. */
export const outboundWebhookId = (jobId: string, action: TargetAction): string => `${jobId}:${action}`;

/** A target's report on a job, as its callback sends it. */
export const callbackBody = z.strictObject({
  status: z.enum(['in_progress', 'succeeded', 'failed']),
  detail: z.string().max(2000).optional(),
  external_url: httpUrl.optional(),
});
export type CallbackBody = z.infer<typeof callbackBody>;

/** The synchronous completion a webhook target may answer its request with. */
export const syncCompletion = z.object({
  status: z.enum(['succeeded', 'failed']),
  detail: z.string().max(2000).optional(),
  external_url: httpUrl.optional(),
});
