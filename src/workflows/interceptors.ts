/**
 * Workflow interceptors: the correlation id arrives in the start header and is copied onto every
 * activity (remote or local) the run schedules. Headers are part of history, so replays see the same id.
 */
import type {
  ActivityInput,
  LocalActivityInput,
  Next,
  StartChildWorkflowExecutionInput,
  WorkflowExecuteInput,
  WorkflowInboundCallsInterceptor,
  WorkflowInterceptors,
  WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import { CORRELATION_HEADER } from './contract';
import type { Payload } from '@temporalio/common';

// Module state is per workflow run: the SDK gives each run its own module instances.
let correlation: Payload | undefined;

class CorrelationInbound implements WorkflowInboundCallsInterceptor {
  async execute(
    input: WorkflowExecuteInput,
    next: Next<WorkflowInboundCallsInterceptor, 'execute'>,
  ): Promise<unknown> {
    correlation = input.headers[CORRELATION_HEADER];
    return next(input);
  }
}

const withCorrelation = <T extends { headers: Record<string, Payload> }>(input: T): T =>
  correlation === undefined
    ? input
    : { ...input, headers: { ...input.headers, [CORRELATION_HEADER]: correlation } };

class CorrelationOutbound implements WorkflowOutboundCallsInterceptor {
  async scheduleActivity(
    input: ActivityInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>,
  ) {
    return next(withCorrelation(input));
  }

  async startChildWorkflowExecution(
    input: StartChildWorkflowExecutionInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'startChildWorkflowExecution'>,
  ) {
    return next(withCorrelation(input));
  }

  async scheduleLocalActivity(
    input: LocalActivityInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>,
  ) {
    return next(withCorrelation(input));
  }
}

/** Registered through `workerOptions.interceptors.workflowModules`. */
export const interceptors = (): WorkflowInterceptors => ({
  inbound: [new CorrelationInbound()],
  outbound: [new CorrelationOutbound()],
});
