import { readFileSync } from 'node:fs';

import type { Descriptor } from './archive.js';

/**
 * Which image of an index or manifest list a node runs: miniC runs linux/amd64 only. Of the
 * amd64 entries, the one for the highest x86-64 microarchitecture level this CPU has the
 * instructions of is taken (v4, v3, v2, then v1, which an entry without a variant is), as
 * newer containerd does; an entry for a level the CPU lacks never is, as its code would die
 * of an illegal instruction. Entries for other systems or architectures, arm64 v8 among
 * them, never match.
 */

/** The x86-64 microarchitecture levels and the /proc/cpuinfo flags each adds. */
const LEVEL_FLAGS: [string, string[]][] = [
  ['v2', ['cx16', 'lahf_lm', 'popcnt', 'sse4_1', 'sse4_2', 'ssse3']],
  ['v3', ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave']],
  ['v4', ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl']],
];

/** The amd64 variants this CPU runs, best first ending with v1; v1 alone if unknown. */
export function amd64Variants(cpuinfo?: string): string[] {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return ['v1'];
    }
  }
  const line = /^flags\s*:(.*)$/m.exec(text)?.[1] ?? '';
  const flags = new Set(line.trim().split(/\s+/));
  const levels = ['v1'];
  for (const [level, needs] of LEVEL_FLAGS) {
    if (!needs.every((f) => flags.has(f))) break;
    levels.unshift(level);
  }
  return levels;
}

let hostVariants: string[] | undefined;
const MAX_LISTED = 12;

/** How a descriptor's platform reads in messages: linux/arm64/v8; "no platform" if none. */
export function platformName(desc: Descriptor): string {
  const p = desc.platform;
  if (typeof p !== 'object' || p === null) return 'no platform';
  // A registry wrote these: each part is cut short so that a message stays readable.
  const part = (v: unknown) => String(v ?? '?').slice(0, 32);
  return [part(p.os), part(p.architecture), ...(p.variant ? [part(p.variant)] : [])].join('/');
}

/**
 * The entry of an index this node runs, or undefined. An index of one entry without a
 * platform is taken as it is (image layouts written by some tools look like that).
 */
export function pickPlatform(
  manifests: Descriptor[],
  variants: string[] = (hostVariants ??= amd64Variants()),
): Descriptor | undefined {
  if (manifests.length === 1 && !manifests[0].platform) return manifests[0];
  // The position in `variants` (best first); -1 for a level this CPU lacks.
  const rank = (m: Descriptor) =>
    m.platform?.os === 'linux' && m.platform?.architecture === 'amd64'
      ? variants.indexOf(m.platform.variant || 'v1')
      : -1;
  const runnable = manifests.filter((m) => rank(m) >= 0);
  return runnable.sort((a, b) => rank(a) - rank(b))[0];
}

/** Why an index has nothing for this node, listing what it has instead. */
export function noPlatformMessage(manifests: Descriptor[]): string {
  if (manifests.length === 0) return 'it lists no images';
  const shown = manifests.slice(0, MAX_LISTED).map(platformName);
  const more = manifests.length - shown.length;
  return `it has ${shown.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}
