/**
 * What the contract says of a command target's run: exactly which variables it gets, and what its
 * end means (0 succeeded, 75 retried, anything else or a stop a failure with its last stderr line).
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { DeliveryOutcome } from '../../workflows/contract';
import type { runCommand } from './command-runner';
import type { JobContext } from './job-context';

/** Exactly the contract's environment of a command: nothing else of the worker's reaches it. */
export function commandEnv(job: JobContext, action: 'provision' | 'deploy'): Record<string, string> {
  const d = job.deployment;
  return {
    PATH: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin',
    IDP_ACTION: action,
    IDP_JOB_ID: job.jobId,
    IDP_SERVICE: job.service.name,
    IDP_ENVIRONMENT: job.environment.name,
    IDP_TIER: job.environment.tier,
    ...(d && action === 'deploy' ? { IDP_VERSION: d.version, IDP_DEPLOYMENT_ID: String(d.id) } : {}),
  };
}

/** What a command's end means: 0 succeeded, 75 retried, anything else (or a stop) a failure. */
export function commandVerdict(
  target: string,
  command: string,
  timeoutText: string,
  r: Awaited<ReturnType<typeof runCommand>>,
): DeliveryOutcome {
  const said = r.lastStderrLine ? `: ${r.lastStderrLine}` : '';
  if (r.stopped === 'timeout')
    throw ApplicationFailure.nonRetryable(
      `command '${command}' of target '${target}' did not finish within ${timeoutText} (stopped)${said}`,
    );
  if (r.code === 0)
    return {
      status: 'succeeded',
      detail: `command '${command}' of target '${target}' exited 0`,
      externalUrl: null,
    };
  if (r.code === 75)
    throw ApplicationFailure.retryable(
      `command '${command}' exited 75 (temporary failure)${said}`,
      'CommandTempFail',
    );
  const how = r.code !== null ? `exited ${r.code}` : `was killed by ${r.killedBy}`;
  throw ApplicationFailure.nonRetryable(`command '${command}' of target '${target}' ${how}${said}`);
}
