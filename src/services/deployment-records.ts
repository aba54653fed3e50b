/** Deployments as records: read one or an environment's history, and end one that has no run. */
import { LockMode } from '@mikro-orm/postgresql';
import { recordChange } from '../db/changes';
import { Approval, Deployment, Environment } from '../domain/entities';
import { NotFoundError } from '../domain/errors';
import { moveDeployment, type DeploymentStatus } from '../domain/lifecycle';
import { byCaller } from './audit-trail';
import type { Caller } from './caller';
import type { ServiceDeps } from './service-deps';

/** A deployment with its approvals, as the API shows it. */
export interface DeploymentView {
  deployment: Deployment;
  approvals: Approval[];
}

/** A deployment and its approvals, or 404. */
export async function getDeployment(deps: ServiceDeps, id: number): Promise<DeploymentView> {
  const em = deps.orm.em.fork();
  const deployment = await em.findOne(Deployment, id);
  if (!deployment) throw new NotFoundError(`deployment ${id} does not exist`);
  return { deployment, approvals: await em.find(Approval, { deploymentId: id }, { orderBy: { id: 'asc' } }) };
}

/** A page of an environment's history, newest first (`limit + 1` rows before `before`), with their approvals. */
export async function deploymentHistory(
  deps: ServiceDeps,
  serviceId: number,
  environmentId: number,
  page: { limit: number; before?: number },
): Promise<DeploymentView[]> {
  const em = deps.orm.em.fork();
  const env = await em.findOne(Environment, { id: environmentId, serviceId });
  if (!env) throw new NotFoundError(`service ${serviceId} has no environment ${environmentId}`);
  const rows = await em.find(
    Deployment,
    { environmentId: env.id, ...(page.before ? { id: { $lt: page.before } } : {}) },
    { orderBy: { id: 'desc' }, limit: page.limit + 1 },
  );
  const approvals = rows.length
    ? await em.find(Approval, { deploymentId: { $in: rows.map((r) => r.id) } }, { orderBy: { id: 'asc' } })
    : [];
  return rows.map((deployment) => ({
    deployment,
    approvals: approvals.filter((a) => a.deploymentId === deployment.id),
  }));
}

/**
 * Ends a deployment that has no run behind it, if its status is one of `from`; true when it did.
 * The move goes through the lifecycle module like the run's own, with the caller as its actor.
 * Takes the row lock the activities take, so a run that did start after all (a start whose answer
 * was lost) and this end are serialised: whichever comes second sees the other's status.
 */
export async function endUnstarted(
  deps: ServiceDeps,
  caller: Caller,
  id: number,
  from: readonly DeploymentStatus[],
  to: 'failed' | 'cancelled',
  detail: string,
): Promise<boolean> {
  return deps.orm.em.fork().transactional(async (tx) => {
    const d = await tx.findOne(Deployment, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!d || !from.includes(d.status)) return false;
    recordChange(tx, moveDeployment(d, to, { ...byCaller(caller), detail, error: detail }), {
      type: 'deployment',
      row: d,
    });
    return true;
  });
}
