/**
 * The contract between the API and the workflows: names, inputs, results, update/query definitions,
 * search attributes and workflow IDs. The only module the API imports from `src/workflows`.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DeploymentStatus, EnvironmentStatus } from '../domain/lifecycle';

/** Search attributes the platform sets on its runs (all Keyword), for filtering in the Temporal Web UI. */
export const SEARCH_ATTRIBUTES = {
  kind: defineSearchAttributeKey('IdpKind', SearchAttributeType.KEYWORD),
  service: defineSearchAttributeKey('IdpService', SearchAttributeType.KEYWORD),
  environment: defineSearchAttributeKey('IdpEnvironment', SearchAttributeType.KEYWORD),
  tier: defineSearchAttributeKey('IdpTier', SearchAttributeType.KEYWORD),
  version: defineSearchAttributeKey('IdpVersion', SearchAttributeType.KEYWORD),
  team: defineSearchAttributeKey('IdpTeam', SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey('IdpStatus', SearchAttributeType.KEYWORD),
  target: defineSearchAttributeKey('IdpTarget', SearchAttributeType.KEYWORD),
} as const;

/** Names of the search attributes, for `temporal server start-dev --search-attribute` and the setup job. */
export const SEARCH_ATTRIBUTE_NAMES = Object.values(SEARCH_ATTRIBUTES).map((k) => k.name);

/** The header that carries the correlation id from the API into workflows and activities. */
export const CORRELATION_HEADER = 'idp-correlation-id';

/** Workflow type names, as registered by the worker. */
export const WORKFLOW_TYPES = {
  provision: 'provisionEnvironment',
  deploy: 'deployVersion',
  release: 'releaseVersion',
  notify: 'deliverEvents',
} as const;

/** The task queue of event deliveries: their long activities never take a slot a deployment needs. */
export const notificationsQueue = (taskQueue: string): string => `${taskQueue}-notifications`;

/** Input of {@link WORKFLOW_TYPES.notify}: one run per subscription. */
export interface NotifyInput {
  subscriptionId: number;
  team: string | null;
}

/** The job id of a subscription's deliveries. */
export const notifyJobId = (subscriptionId: number): string => `notify-webhook-${subscriptionId}`;

/** Input of {@link WORKFLOW_TYPES.provision}. */
export interface ProvisionInput {
  environmentId: number;
  service: string;
  environment: string;
  tier: string;
  team: string | null;
  requestedBy: string;
  /** The environment's target (absent in runs started before targets). */
  target?: string;
}

/** Input of {@link WORKFLOW_TYPES.deploy}. */
export interface DeployInput {
  deploymentId: number;
  service: string;
  environment: string;
  tier: string;
  version: string;
  team: string | null;
  requestedBy: string;
  /** The deployment's target (absent in runs started before targets). */
  target?: string;
}

/** Input of {@link WORKFLOW_TYPES.release}. */
export interface ReleaseInput {
  releaseId: number;
  service: string;
  version: string;
  team: string | null;
  requestedBy: string;
}

/** A deployment a run starts as a child (a release's stage, an automatic rollback): its row exists. */
export interface DeploymentStart {
  deploymentId: number;
  jobId: string;
  input: DeployInput;
  summary: string;
}

/** What a release run reads first: its stages, in order, and the soak after each tier (seconds). */
export interface ReleasePlan {
  stages: { tier: string; environments: { id: number; name: string }[]; soakAfterSeconds: number }[];
  /** The stages that ended already (a run that continued as new), by index. */
  done: number;
  /** The release ended before its run began (cancelled, or its start taken for failed): nothing to run. */
  ended?: string;
}

/** The search attributes a job's run starts with (all Keyword), from its input. */
export function jobSearchAttributes(
  kind: 'deployment' | 'provisioning' | 'release' | 'notification',
  i: {
    service?: string;
    team: string | null;
    environment?: string;
    tier?: string;
    version?: string;
    target?: string;
  },
  status: string,
) {
  const keyword = (
    key: (typeof SEARCH_ATTRIBUTES)[keyof typeof SEARCH_ATTRIBUTES],
    value: string | undefined,
  ) => (value === undefined ? [] : [{ key, value }]);
  return [
    ...keyword(SEARCH_ATTRIBUTES.kind, kind),
    ...keyword(SEARCH_ATTRIBUTES.service, i.service),
    ...keyword(SEARCH_ATTRIBUTES.environment, i.environment),
    ...keyword(SEARCH_ATTRIBUTES.tier, i.tier),
    ...keyword(SEARCH_ATTRIBUTES.status, status),
    ...keyword(SEARCH_ATTRIBUTES.team, i.team ?? undefined),
    ...keyword(SEARCH_ATTRIBUTES.version, i.version),
    ...keyword(SEARCH_ATTRIBUTES.target, i.target),
  ];
}

/** An approver's decision, checked by the API and again by the workflow. */
export interface DecisionInput {
  approver: string;
  roles: string[];
  decision: 'approve' | 'reject';
  comment: string | null;
  correlationId: string;
}

/** What a deployment workflow knows of its deployment. */
export interface DeploymentState {
  status: DeploymentStatus;
  approvalsRequired: number;
  approvers: string[];
}

/** Result of a provisioning run. */
export interface ProvisionResult {
  status: EnvironmentStatus;
}

/** Result of a deployment run that succeeded (the others fail the workflow). */
export interface DeployResult {
  status: DeploymentStatus;
}

/** Sends a decision and answers with the state after it; the validator refuses ineligible decisions. */
export const decideUpdate = defineUpdate<DeploymentState, [DecisionInput]>('decide');

/** A job's row: the deployment or the environment (provisioning) whose run it is. */
export interface JobRef {
  type: 'deployment' | 'environment';
  id: number;
}

/** How a job reaches its target, read when its run gets there. */
export interface DeliveryPlan {
  target: string;
  kind: 'simulated' | 'webhook' | 'command';
  /** How long the run waits for the target's completion (a webhook's callback, a command's exit). */
  timeoutSeconds: number;
  /** The timeout as configured (`"1h"`), for the message when it passes. */
  timeoutText: string;
  /** The probes after a rollout (deployments to an environment with verification), else null. */
  verification: {
    url: string;
    expectStatus: number;
    intervalMs: number;
    probes: number;
    failuresAllowed: number;
  } | null;
}

/** What handing a job to its target gave: accepted (a callback will tell), or done at once. */
export type DeliveryOutcome =
  | { status: 'accepted'; at: number }
  | { status: 'succeeded' | 'failed'; detail: string; externalUrl: string | null };

/** A target's report on a job, handed to the job's run by the callback route (signed and checked there). */
export interface TargetReport {
  /** The callback's `webhook-id`: the run applies each one once. */
  webhookId: string;
  status: 'in_progress' | 'succeeded' | 'failed';
  detail: string | null;
  externalUrl: string | null;
  /** When the API received it (ISO-8601), for the callback latency. */
  receivedAt: string;
}

/**
 * A target's report, as a signal: the server keeps it in the run's history whether or not a worker
 * is running, so a callback is never lost to a worker that is down or restarting (an update would
 * need a worker to answer). The API has verified the signature and that the job waits for its target.
 */
export const targetReportSignal = defineSignal<[TargetReport]>('targetReport');

/** The deployment as the workflow sees it. */
export const getStatusQuery = defineQuery<DeploymentState>('getStatus');

/** Failure types the workflows end with (ApplicationFailure `type`). */
export const FAILURE_TYPES = {
  promotionOrder: 'PromotionOrderViolation',
  notReady: 'EnvironmentNotReady',
  rejected: 'DeploymentRejected',
  expired: 'ApprovalExpired',
  deployFailed: 'DeploymentFailed',
  provisionFailed: 'ProvisioningFailed',
  decisionRefused: 'DecisionRefused',
  verificationFailed: 'VerificationFailed',
  releaseFailed: 'ReleaseFailed',
} as const;

const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9-]+/g, '-');

// Job ids end in the row's id: names may contain dashes (`svcb-qa` + `eu` and `svcb` + `qa-eu` spell
// the same prefix), but no two rows share an id, so the id makes every job id unique by construction
// while the names keep it readable.

/**
 * The job id (workflow ID) of an environment's provisioning: `provision-<service>-<env>-<n>`, n being
 * the environment's id. (Environments created before ids were part of it keep their stored job id.)
 */
export function provisionJobId(service: string, environment: string, n: number): string {
  return `provision-${slug(service)}-${slug(environment)}-${n}`;
}

/** The job id (workflow ID) of a deployment: `deploy-<service>-<env>-<n>`, n being the deployment's id. */
export function deployJobId(service: string, environment: string, n: number): string {
  return `deploy-${slug(service)}-${slug(environment)}-${n}`;
}

/** The job id (workflow ID) of a release: `release-<service>-<n>`, n being the release's id. */
export function releaseJobId(service: string, n: number): string {
  return `release-${slug(service)}-${n}`;
}

/** The message of an activity failure's cause (what the driver said), or of the error itself. */
export function failureMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause instanceof Error ? err.cause.message : err.message;
}
