import { test } from 'node:test';
import assert from 'node:assert/strict';
import { componentLogger } from '../log.js';
import type { ImageInfo, ImageService, RuntimeService } from '../runtime/runtime.js';
import { ImageGc, thresholdProblem, type ImageGcOptions } from './image-gc.js';

/** An image store and a runtime in memory; `usedIds` are the images containers use now. */
function fakes(images: ImageInfo[], usedIds: string[]) {
  const removed: string[] = [];
  const imageService = {
    listImages: async () => images.filter((i) => !i.names.every((n) => removed.includes(n))),
    removeImage: async (name: string) => void removed.push(name),
  } as unknown as ImageService;
  const runtime = {
    listContainers: async () => usedIds.map((imageId) => ({ imageId })),
  } as unknown as RuntimeService;
  return { imageService, runtime, removed, usedIds };
}

const image = (name: string, size: number): ImageInfo => ({
  names: [name],
  digest: `d-${name}`,
  id: `id-${name}`,
  size,
});

const MINUTE = 60_000;

/** A collector on a disk of 100 bytes with `used` of them taken, and a clock to move. */
function collector(
  f: ReturnType<typeof fakes>,
  used: { value: number },
  opts: ImageGcOptions = {},
) {
  const clock = { now: 60 * MINUTE };
  const gc = new ImageGc(f.imageService, f.runtime, '/', componentLogger('test'), {
    usage: async () => ({ capacity: 100, used: used.value }),
    now: () => clock.now,
    ...opts,
  });
  return { gc, clock };
}

test('image GC frees unused images, least recently used first, down to the low threshold', async () => {
  const images = [image('a', 10), image('b', 10), image('c', 10), image('used', 50)];
  const f = fakes(images, ['id-used', 'id-b']);
  const used = { value: 50 };
  const { gc, clock } = collector(f, used);
  assert.deepEqual(await gc.collect(), [], 'under the threshold'); // b used at 60 min
  clock.now += 5 * MINUTE;
  f.usedIds.splice(0, 2, 'id-used', 'id-a');
  assert.deepEqual(await gc.collect(), []); // a used at 65 min; c never
  f.usedIds.splice(0, 2, 'id-used');
  clock.now += 5 * MINUTE;
  used.value = 90; // 10 to free: c, never used
  assert.deepEqual(await gc.collect(), ['c']);
  assert.deepEqual(f.removed, ['c']);
  used.value = 100; // 20 to free: b (last used at 60 min), then a (65 min)
  assert.deepEqual(await gc.collect(), ['b', 'a']);
  used.value = 200;
  assert.deepEqual(await gc.collect(), [], 'never the image a container uses');
});

test('image GC keeps an image it first saw less than the minimum age ago', async () => {
  const f = fakes([image('old', 10)], []);
  const used = { value: 95 };
  const { gc, clock } = collector(f, used);
  await gc.collect();
  clock.now += MINUTE;
  assert.deepEqual(await gc.collect(), [], 'maybe pulled for a container about to start');
  clock.now += MINUTE;
  assert.deepEqual(await gc.collect(), ['old']);
});

test('image GC thresholds: at the high one it runs; 100 turns it off', async () => {
  const cases: { high: number; low: number; used: number; want: string[] }[] = [
    { high: 85, low: 80, used: 84, want: [] },
    { high: 85, low: 80, used: 85, want: ['x'] },
    { high: 100, low: 80, used: 100, want: [] },
    { high: 1, low: 0, used: 1, want: ['x'] },
  ];
  for (const c of cases) {
    const f = fakes([image('x', 1)], []);
    const { gc } = collector(
      f,
      { value: c.used },
      { highPercent: c.high, lowPercent: c.low, minAgeMs: 0 },
    );
    assert.deepEqual(await gc.collect(), c.want, JSON.stringify(c));
  }
});

test('thresholds must make sense, named as kubelet names them', () => {
  const cases: [number, number, RegExp | undefined][] = [
    [85, 80, undefined],
    [100, 0, undefined],
    [70, 80, /--image-gc-low-threshold \(80\) must be less than --image-gc-high-threshold \(70\)/],
    [80, 80, /must be less than/],
    [101, 80, /--image-gc-high-threshold must be a whole percent from 0 to 100, not 101/],
    [85, -1, /--image-gc-low-threshold must be a whole percent/],
    [85.5, 80, /--image-gc-high-threshold must be a whole percent/],
    [Number.NaN, 80, /--image-gc-high-threshold must be a whole percent/],
  ];
  for (const [high, low, want] of cases) {
    const problem = thresholdProblem(high, low);
    if (want === undefined) assert.equal(problem, undefined, `${high}/${low}`);
    else assert.match(problem ?? '', want, `${high}/${low}`);
  }
  const { imageService, runtime } = fakes([], []);
  assert.throws(
    () =>
      new ImageGc(imageService, runtime, '/', componentLogger('test'), {
        highPercent: 70,
        lowPercent: 80,
      }),
    /image GC: --image-gc-low-threshold/,
  );
});
