import { test } from 'node:test';
import assert from 'node:assert/strict';
import { componentLogger } from '../log.js';
import type { ImageInfo, ImageService, RuntimeService } from '../runtime/runtime.js';
import { ImageGc } from './image-gc.js';

function fakes(images: ImageInfo[], usedIds: string[]) {
  const removed: string[] = [];
  const imageService = {
    listImages: async () => images.filter((i) => !i.names.every((n) => removed.includes(n))),
    removeImage: async (name: string) => void removed.push(name),
  } as unknown as ImageService;
  const runtime = {
    listContainers: async () => usedIds.map((imageId) => ({ imageId })),
  } as unknown as RuntimeService;
  return { imageService, runtime, removed };
}

const image = (name: string, size: number): ImageInfo => ({
  names: [name],
  digest: `d-${name}`,
  id: `id-${name}`,
  size,
});

test('image GC frees unused images, largest first, down to the low threshold', async () => {
  const images = [image('small', 5), image('big', 30), image('used', 50), image('mid', 10)];
  const cases: { used: number; want: string[] }[] = [
    { used: 80, want: [] }, // under the high threshold (85 of 100)
    { used: 90, want: ['big'] }, // 10 to free: the largest unused image is enough
    { used: 120, want: ['big', 'mid'] }, // 40 to free
    { used: 200, want: ['big', 'mid', 'small'] }, // everything unused, never the one in use
  ];
  for (const c of cases) {
    const { imageService, runtime, removed } = fakes(images, ['id-used']);
    const gc = new ImageGc(imageService, runtime, '/', componentLogger('test'), {
      usage: async () => ({ capacity: 100, used: c.used }),
    });
    assert.deepEqual(await gc.collect(), c.want, `used ${c.used}`);
    assert.deepEqual(removed, c.want);
  }
});

test('thresholds must make sense', () => {
  const { imageService, runtime } = fakes([], []);
  assert.throws(
    () =>
      new ImageGc(imageService, runtime, '/', componentLogger('test'), {
        highPercent: 70,
        lowPercent: 80,
      }),
  );
});
