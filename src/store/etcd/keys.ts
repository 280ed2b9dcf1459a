/**
 * Byte-level key handling for the etcd backend. etcd orders keys by their bytes, which for
 * UTF-8 is code point order, the same order the SQLite backend uses.
 */

/** Where a prefix scan starts and ends; etcd's range_end is exclusive. */
export interface ByteRange {
  key: Buffer;
  rangeEnd: Buffer;
}

/** etcd's "every key from here on" marker for range_end. */
const TO_THE_END = Buffer.from([0]);

/**
 * The range of keys that start with `prefix`. The empty prefix covers the whole keyspace,
 * which etcd spells as key = range_end = "\0".
 */
export function prefixRange(prefix: Buffer): ByteRange {
  if (prefix.length === 0) return { key: TO_THE_END, rangeEnd: TO_THE_END };
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return { key: prefix, rangeEnd: end.subarray(0, i + 1) };
    }
  }
  return { key: prefix, rangeEnd: TO_THE_END };
}

/** The smallest key greater than `key`: the key followed by a zero byte. */
export function keyAfter(key: Buffer): Buffer {
  return Buffer.concat([key, TO_THE_END]);
}

/** The greater of two keys in etcd's byte order. */
export function maxKey(a: Buffer, b: Buffer): Buffer {
  return Buffer.compare(a, b) >= 0 ? a : b;
}
