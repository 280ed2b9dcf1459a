/**
 * Key ranges for prefix queries. SQLite compares TEXT with the BINARY collation, that is
 * byte by byte over UTF-8, which is the same order as comparing Unicode code points (and
 * the order etcd uses). JavaScript's `<` compares UTF-16 code units instead, which differs
 * for characters above U+FFFF, so comparisons that must agree with SQLite go through here.
 */

const MAX_CODE_POINT = 0x10ffff;
const SURROGATE_START = 0xd800;
const SURROGATE_END = 0xdfff;

/**
 * The smallest string greater than every string that starts with `prefix`, so that
 * `key >= prefix AND key < prefixEnd(prefix)` selects exactly the keys with the prefix.
 * Undefined when no upper bound exists (the empty prefix, or only U+10FFFF characters).
 */
export function prefixEnd(prefix: string): string | undefined {
  const points = Array.from(prefix);
  for (let i = points.length - 1; i >= 0; i--) {
    const point = points[i]!.codePointAt(0)!;
    if (point === MAX_CODE_POINT) continue;
    // Surrogates are not characters and never appear in UTF-8, so skip over them.
    const next = point + 1 === SURROGATE_START ? SURROGATE_END + 1 : point + 1;
    return points.slice(0, i).join('') + String.fromCodePoint(next);
  }
  return undefined;
}

/** Compares two keys in the store's order (UTF-8 bytes); negative when a sorts first. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
