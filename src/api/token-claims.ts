/** What a token's claims must be: who (`sub`), with which roles, in which teams — and our words for each rule. */
import { z } from 'zod';
import { ROLES } from '../domain/types';
import { UNSTORABLE } from './middleware';

/**
 * A character that makes a name ambiguous: every \p{C} (controls, format characters such as
 * zero-width joiners and bidi overrides, unpaired surrogates, private use, unassigned), line and
 * paragraph separators, and any space other than U+0020 (a no-break space looks like a space).
 */
const AMBIGUOUS_CHARACTER = /[\p{C}\p{Zl}\p{Zp}]|(?! )\p{Zs}/u;

/**
 * True when `name` can identify one person: 1–`max` characters, none of them ambiguous,
 * no leading or trailing space, and in NFC (so `é` precomposed and `e` + U+0301 are not two
 * callers that look alike). Such names also store in PostgreSQL unchanged (no NUL).
 */
export function isUnambiguousName(name: string, max: number): boolean {
  return (
    name.length >= 1 &&
    name.length <= max &&
    !AMBIGUOUS_CHARACTER.test(name) &&
    name.trim() === name &&
    name.normalize('NFC') === name
  );
}

export const claimsSchema = z.object({
  sub: z.string().refine((s) => isUnambiguousName(s, 255)),
  exp: z.number(),
  iat: z.number().optional(),
  roles: z.array(z.enum(ROLES)).min(1).max(3),
  // Team names are compared exactly, never normalised: a look-alike entry grants nothing. Only
  // what PostgreSQL cannot store is refused (it would fail the queries that filter by team).
  teams: z
    .array(
      z
        .string()
        .min(1)
        .max(63)
        .refine((s) => !UNSTORABLE.test(s)),
    )
    .max(200)
    .default([]),
});

/** What each claim must be, in our words: the 401 says which claim broke which rule. */
export const CLAIM_RULES: Record<string, string> = {
  sub: "the token's sub claim must be 1-255 printable characters (no control or invisible characters, no leading or trailing whitespace, NFC)",
  exp: 'the token has no numeric exp claim; every token must expire',
  iat: "the token's iat claim must be a number of seconds",
  roles: `the token's roles claim must list 1-3 of ${ROLES.join(', ')}`,
  teams:
    "the token's teams claim must be a list of at most 200 team names of 1-63 characters, without NUL or unpaired surrogates",
};
