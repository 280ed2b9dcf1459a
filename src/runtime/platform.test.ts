import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Descriptor } from './archive.js';
import { amd64Variants, noPlatformMessage, pickPlatform, platformName } from './platform.js';

const entry = (
  name: string,
  architecture?: string,
  variant?: string,
  os = 'linux',
): Descriptor => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: name,
  size: 1,
  ...(architecture ? { platform: { os, architecture, ...(variant ? { variant } : {}) } } : {}),
});

test('picks the linux/amd64 entry this CPU runs best', () => {
  const v3 = ['v3', 'v2', 'v1'];
  const cases: [string, Descriptor[], string[], string | undefined][] = [
    ['arm64 v8 never', [entry('arm', 'arm64', 'v8')], v3, undefined],
    ['amd64 after arm64', [entry('arm', 'arm64', 'v8'), entry('amd', 'amd64')], v3, 'amd'],
    ['windows never', [entry('win', 'amd64', undefined, 'windows')], v3, undefined],
    ['best level first', [entry('a', 'amd64'), entry('b', 'amd64', 'v3')], v3, 'b'],
    ['v1 is no variant', [entry('a', 'amd64', 'v1'), entry('b', 'amd64', 'v2')], ['v1'], 'a'],
    ['never a level the CPU lacks', [entry('b', 'amd64', 'v4')], v3, undefined],
    ['first of equals', [entry('a', 'amd64'), entry('b', 'amd64')], v3, 'a'],
    ['a lone entry without platform', [entry('x')], v3, 'x'],
    ['two entries without platform', [entry('x'), entry('y')], v3, undefined],
  ];
  for (const [name, manifests, variants, want] of cases) {
    assert.equal(pickPlatform(manifests, variants)?.digest, want, name);
  }
});

test('reads the x86-64 level from /proc/cpuinfo flags', () => {
  const v2 = 'cx16 lahf_lm popcnt sse4_1 sse4_2 ssse3';
  const v3 = `${v2} avx avx2 bmi1 bmi2 f16c fma abm movbe xsave`;
  assert.deepEqual(amd64Variants('flags\t\t: fpu sse2\n'), ['v1']);
  assert.deepEqual(amd64Variants(`flags\t: ${v2}\n`), ['v2', 'v1']);
  assert.deepEqual(amd64Variants(`model\t: 1\nflags\t: ${v3}\n`), ['v3', 'v2', 'v1']);
  assert.deepEqual(amd64Variants(`flags\t: ${v3.replace('avx2', '')} avx512f\n`), ['v2', 'v1']);
});

test('names what an index has', () => {
  assert.equal(platformName(entry('a', 'arm64', 'v8')), 'linux/arm64/v8');
  assert.equal(platformName(entry('a')), 'no platform');
  assert.equal(noPlatformMessage([]), 'it lists no images');
  const many = Array.from({ length: 14 }, (_, i) => entry(`${i}`, 'arm64'));
  assert.match(noPlatformMessage(many), /^it has (linux\/arm64, ){11}linux\/arm64 and 2 more$/);
});
