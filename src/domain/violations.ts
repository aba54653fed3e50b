/** Input errors in the platform's words: zod's issues as violations that name each field. */
import type { z } from 'zod';
import { InputError, type Violation } from './errors';

/**
 * Turns zod issues into violations naming each field. A refinement may say what to do instead in
 * `params.hint`; otherwise the hint points at the OpenAPI document.
 */
export function violationsOf(error: z.ZodError, prefix: string): Violation[] {
  return error.issues.map((issue) => {
    const field = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    const given =
      issue.code === 'custom' && typeof issue.params?.['hint'] === 'string'
        ? (issue.params['hint'] as string)
        : undefined;
    const hint =
      issue.code === 'unrecognized_keys'
        ? `remove ${issue.keys.map((k) => `'${k}'`).join(', ')}; see /api/openapi.json for the fields this route takes`
        : (given ?? 'see /api/openapi.json for the expected shape');
    return {
      rule: 'schema',
      field: issue.code === 'unrecognized_keys' ? field || prefix : field,
      message: issue.message,
      hint,
    };
  });
}

/** Parses `value` with `schema` or throws an InputError naming every bad field under `prefix`. */
export function parseOrRefuse<T extends z.ZodType>(schema: T, value: unknown, prefix: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new InputError(`invalid ${prefix}`, violationsOf(parsed.error, prefix));
  return parsed.data;
}
