/**
 * IPv4 CIDR arithmetic for handing out node pod ranges: a cluster range (10.42.0.0/16) is
 * cut into blocks of one size (/24), and each node gets the lowest block nobody holds.
 */

export interface Cidr {
  /** The network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text.trim());
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return undefined;
  const ip = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  return { base: ip - (ip % size), prefix };
}

export function formatCidr(c: Cidr): string {
  const o = [24, 16, 8, 0].map((shift) => Math.floor(c.base / 2 ** shift) % 256);
  return `${o.join('.')}/${c.prefix}`;
}

/** How many blocks of /`blockPrefix` the range holds. */
export function blockCount(range: Cidr, blockPrefix: number): number {
  return blockPrefix < range.prefix ? 0 : 2 ** (blockPrefix - range.prefix);
}

/** The index of `cidr` as a block of `range`, or undefined when it is not one. */
export function blockIndex(range: Cidr, blockPrefix: number, cidr: Cidr): number | undefined {
  if (cidr.prefix !== blockPrefix) return undefined;
  const size = 2 ** (32 - blockPrefix);
  const index = (cidr.base - range.base) / size;
  return index >= 0 && index < blockCount(range, blockPrefix) ? index : undefined;
}

/** Block number `index` of the range. */
export function blockAt(range: Cidr, blockPrefix: number, index: number): Cidr {
  return { base: range.base + index * 2 ** (32 - blockPrefix), prefix: blockPrefix };
}

/**
 * The lowest block of the range that is not in `used` (block indexes), or undefined when
 * the range is full.
 */
export function firstFree(range: Cidr, blockPrefix: number, used: Set<number>): Cidr | undefined {
  const count = blockCount(range, blockPrefix);
  for (let i = 0; i < count; i++) if (!used.has(i)) return blockAt(range, blockPrefix, i);
  return undefined;
}
