/**
 * The activities that hand a job to its target and hear back: the plan, the delivery itself (a
 * simulated run, a command, a signed webhook), a target's progress, the best-effort cancel and the
 * verification after a rollout. Each is safe to repeat: requests carry the same `webhook-id` on
 * every attempt, a command's output is kept across attempts, notes are keyed by the report.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { LockMode } from '@mikro-orm/postgresql';
import { AuditLog, Deployment, Environment } from '../../domain/entities';
import { noteDeployment } from '../../domain/lifecycle';
import {
  outboundWebhookId,
  probePlan,
  targetTimeout,
  type CommandConfig,
  type TargetAction,
  type TargetKind,
  type Verification,
} from '../../domain/targets';
import { open } from '../../security/secret-box';
import { callbackLatency, targetDispatches, verifications } from '../../metrics';
import type { DeliveryOutcome, DeliveryPlan, JobRef, TargetReport } from '../../workflows/contract';
import type { ActivityDeps } from '../activity-deps';
import { DriverError } from '../drivers/driver';
import { activityLogger, keepBeating, moveFacts, record } from '../run-context';
import { commandEnv, commandVerdict } from './command-contract';
import { runCommand } from './command-runner';
import { jobDocument, loadJob, type JobContext } from './job-context';
import { OutputSink } from './output-sink';
import { verify, type ProbeProgress, type Verdict } from './prober';
import { postSigned } from './webhook-sender';

const failureType = (ref: JobRef): string =>
  ref.type === 'deployment' ? 'DeploymentFailed' : 'ProvisioningFailed';

/** The delivery activities over the ORM, the driver of `simulated` targets and the delivery settings. */
export function deliveryActivities(deps: ActivityDeps) {
  const { orm, logger } = deps;

  /** The signing secret of a job's target, decrypted. */
  const secretOf = (job: JobContext): string => {
    const key = deps.delivery.encryptionKey;
    if (!key)
      throw ApplicationFailure.nonRetryable(
        'this worker has no IDP_ENCRYPTION_KEY: it cannot sign requests to targets',
        'TargetMisconfigured',
      );
    if (!job.target.secret)
      throw ApplicationFailure.nonRetryable(
        `target '${job.target.name}' has no signing secret`,
        'TargetMisconfigured',
      );
    return open(key, `target:${job.target.name}`, job.target.secret);
  };

  const viaWebhook = async (job: JobContext, action: TargetAction): Promise<DeliveryOutcome> => {
    const ctx = Context.current();
    const body = {
      ...jobDocument(job, action),
      callback_url: `${deps.delivery.publicUrl}/api/jobs/${job.jobId}/callback`,
      attempt: ctx.info.attempt,
    };
    const url = String(job.target.config['url']);
    // A local activity (the hand-over) has no heartbeat; the cancel notice is a remote one that does.
    const stop = ctx.info.isLocal ? () => undefined : keepBeating();
    try {
      return await postSigned(
        job.target.name,
        url,
        secretOf(job),
        outboundWebhookId(job.jobId, action),
        body,
        ctx.cancellationSignal,
      );
    } finally {
      stop();
    }
  };

  const viaCommand = async (job: JobContext, action: 'provision' | 'deploy'): Promise<DeliveryOutcome> => {
    const config = job.target.config as CommandConfig;
    const dir = deps.delivery.commandsDir;
    if (!dir)
      throw ApplicationFailure.nonRetryable(
        `command target '${job.target.name}': this worker has no DRIVER_COMMANDS_DIR, so it runs no commands`,
        'TargetMisconfigured',
      );
    const file = path.join(path.resolve(dir), config.command);
    try {
      await access(file, constants.X_OK);
    } catch {
      throw ApplicationFailure.nonRetryable(
        `command target '${job.target.name}': '${config.command}' is not an executable in DRIVER_COMMANDS_DIR`,
        'TargetMisconfigured',
      );
    }
    const ctx = Context.current();
    const sink = await OutputSink.open(orm, job.jobId);
    sink.note(`attempt ${ctx.info.attempt}: ${config.command} ${(config.args ?? []).join(' ')}`.trimEnd());
    const stop = keepBeating();
    const { seconds, text } = targetTimeout('command', config);
    try {
      const result = await runCommand({
        file,
        args: config.args ?? [],
        env: commandEnv(job, action),
        stdin: JSON.stringify({ ...jobDocument(job, action), attempt: ctx.info.attempt }),
        timeoutMs: seconds * 1000,
        signal: ctx.cancellationSignal,
        onOutput: (chunk) => sink.write(chunk),
      });
      sink.note(
        `ended: ${result.stopped ?? (result.code !== null ? `exit ${result.code}` : `signal ${result.killedBy}`)}`,
      );
      // Cancelled: the process group is gone; the activity ends as cancelled (the SDK's failure).
      if (result.stopped === 'cancelled') throw ctx.cancellationSignal.reason;
      return commandVerdict(job.target.name, config.command, text, result);
    } finally {
      stop();
      await sink.close();
    }
  };

  const viaDriver = async (job: JobContext, action: 'provision' | 'deploy'): Promise<DeliveryOutcome> => {
    const ctx = Context.current();
    const request = {
      jobId: job.jobId,
      service: job.service.name,
      environment: job.environment.name,
      tier: job.environment.tier,
      target: { name: job.target.name, config: job.target.config },
    };
    const beat = () => ctx.heartbeat();
    try {
      const result =
        action === 'provision'
          ? await deps.driver.provision(
              { ...request, config: job.environment.config },
              beat,
              ctx.cancellationSignal,
            )
          : await deps.driver.deploy(
              {
                ...request,
                version: job.deployment!.version,
                config: job.deployment!.config,
                environmentConfig: job.environment.config,
              },
              beat,
              ctx.cancellationSignal,
            );
      return { status: 'succeeded', detail: result.detail, externalUrl: null };
    } catch (err) {
      if (err instanceof DriverError && !err.retryable)
        throw ApplicationFailure.nonRetryable(err.message, 'DriverFailed');
      throw err;
    }
  };

  return {
    /** How the job reaches its target now: the target's kind and timeout, and a deployment's verification. */
    async planDelivery(ref: JobRef): Promise<DeliveryPlan> {
      const job = await loadJob(orm.em.fork(), ref);
      const kind = job.target.kind as TargetKind;
      const timeout = targetTimeout(kind, job.target.config);
      const verification =
        ref.type === 'deployment' && job.environment.verification
          ? probePlan(job.environment.verification as Verification)
          : null;
      return {
        target: job.target.name,
        kind,
        timeoutSeconds: timeout.seconds,
        timeoutText: timeout.text,
        verification,
      };
    },

    /**
     * Hands the job to its target: runs the simulated driver or the command to its end, or sends the
     * signed webhook (accepted, or completed by its answer). A permanent failure is non-retryable;
     * the retry policy retries the rest (a 5xx, exit 75, a lost worker).
     */
    async deliver(ref: JobRef, action: 'provision' | 'deploy'): Promise<DeliveryOutcome> {
      const job = await loadJob(orm.em.fork(), ref);
      const kind = job.target.kind as TargetKind;
      try {
        const outcome =
          kind === 'webhook'
            ? await viaWebhook(job, action)
            : kind === 'command'
              ? await viaCommand(job, action)
              : await viaDriver(job, action);
        targetDispatches.inc({ kind, outcome: outcome.status });
        return outcome;
      } catch (err) {
        const retryable = !(err instanceof ApplicationFailure && err.nonRetryable);
        targetDispatches.inc({
          kind,
          outcome: Context.current().cancellationSignal.aborted
            ? 'cancelled'
            : retryable
              ? 'retried'
              : 'failed',
        });
        if (err instanceof ApplicationFailure && err.nonRetryable)
          throw ApplicationFailure.nonRetryable(err.message, failureType(ref));
        throw err;
      }
    },

    /** Tells a webhook target that the deployment is cancelled (best effort: the caller ignores a failure). */
    async sendCancel(ref: JobRef): Promise<void> {
      const job = await loadJob(orm.em.fork(), ref);
      if (job.target.kind !== 'webhook') return;
      await viaWebhook(job, 'cancel');
    },

    /** Notes a target's `in_progress` report: a timeline entry (deployments) and its `external_url`. */
    async noteReport(ref: JobRef, target: string, report: TargetReport): Promise<void> {
      await orm.em.fork().transactional(async (em) => {
        const detail = `target '${target}': ${report.detail ?? 'in progress'}`;
        if (ref.type === 'deployment') {
          const d = await em.findOneOrFail(Deployment, ref.id, { lockMode: LockMode.PESSIMISTIC_WRITE });
          if (d.status !== 'in_progress') return;
          // A repeat (its worker lost after the commit) finds its note written: nothing more to do.
          if ((await em.count(AuditLog, { dedupeKey: `${d.jobId}:note:callback:${report.webhookId}` })) > 0)
            return;
          if (report.externalUrl) d.externalUrl = report.externalUrl;
          record(
            em,
            noteDeployment(d, `callback:${report.webhookId}`, {
              ...moveFacts(`target:${target}`, d.correlationId),
              detail,
            }),
          );
        } else {
          const env = await em.findOneOrFail(Environment, ref.id, { lockMode: LockMode.PESSIMISTIC_WRITE });
          if (env.status === 'provisioning' && report.externalUrl) env.externalUrl = report.externalUrl;
        }
      });
      activityLogger(logger).info({ job: ref, webhook_id: report.webhookId }, 'target reported progress');
    },

    /** Observes the time from a webhook's acceptance to its completing callback. */
    async observeCallback(kind: string, latencyMs: number): Promise<void> {
      callbackLatency.observe({ kind }, Math.max(0, latencyMs) / 1000);
    },

    /** Probes the environment after a rollout (see prober.ts); resumes from an earlier attempt's heartbeat. */
    async verifyRollout(
      deploymentId: number,
      plan: NonNullable<DeliveryPlan['verification']>,
    ): Promise<Verdict> {
      const ctx = Context.current();
      let progress = ctx.info.heartbeatDetails as ProbeProgress | undefined;
      const stop = keepBeating(() => progress);
      try {
        const verdict = await verify(plan, progress, (p) => (progress = p), ctx.cancellationSignal);
        verifications.inc({ outcome: verdict.ok ? 'passed' : 'failed' });
        activityLogger(logger).info({ deployment_id: deploymentId, ok: verdict.ok }, 'verification ended');
        return verdict;
      } finally {
        stop();
      }
    },
  };
}
