import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * The next value of `sequence`, taken inside `tx` so that a row can carry its id in other columns
 * (a job id ends in it) in its first insert. On the transaction's own connection: without the
 * context it takes a second one from the pool, and a burst of triggers can leave every connection
 * held by a transaction waiting for one more.
 */
export async function nextId(
  tx: EntityManager,
  sequence: 'deployment_id_seq' | 'environment_id_seq' | 'release_id_seq' | 'webhook_subscription_id_seq',
): Promise<number> {
  const [row] = await tx
    .getConnection()
    .execute<{ id: string }[]>(`select nextval('${sequence}') as id`, [], 'all', tx.getTransactionContext());
  return Number(row!.id);
}
