import type { EntityManager, EntityName, FilterQuery } from '@mikro-orm/postgresql';

/**
 * One keyset page: the rows of `entity` matching `where` whose `key` comes after `page.after`, in
 * ascending `key` order, `page.limit + 1` of them (the extra row says whether a next page exists).
 * Stable under inserts, unlike an offset.
 */
export function rowsAfter<T extends object, K extends keyof T & string>(
  em: EntityManager,
  entity: EntityName<T>,
  key: K,
  page: { limit: number; after?: T[K] },
  where: FilterQuery<T> = {},
): Promise<T[]> {
  const after = page.after === undefined ? {} : { [key]: { $gt: page.after } };
  return em.find(entity, { ...(where as object), ...after } as FilterQuery<T>, {
    orderBy: { [key]: 'asc' } as never,
    limit: page.limit + 1,
  });
}
