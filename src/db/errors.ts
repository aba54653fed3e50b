/** True for PostgreSQL's unique_violation, as MikroORM or the pg driver reports it. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { name?: string; code?: string };
  return e?.name === 'UniqueConstraintViolationException' || e?.code === '23505';
}
