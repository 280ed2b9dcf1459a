import { statfs } from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { ImageInfo, ImageService, RuntimeService } from '../runtime/runtime.js';

/**
 * Image garbage collection, as kubelet does it: when the disk holding the image store is
 * fuller than the high threshold, images that no container (running or exited) uses are
 * removed until usage is back under the low threshold. kubelet removes the least recently
 * used first; miniC does not record when an image was last used, so the largest go first,
 * which frees the space with the fewest removals.
 */

export interface ImageGcOptions {
  /** Percent of the disk used above which collection starts; default 85, as kubelet. */
  highPercent?: number;
  /** Percent collection brings usage down to; default 80, as kubelet. */
  lowPercent?: number;
  /** The disk's size and bytes used; reads the file system of `dir` by default. */
  usage?: () => Promise<{ capacity: number; used: number }>;
}

export async function diskUsage(dir: string): Promise<{ capacity: number; used: number }> {
  const fs = await statfs(dir);
  const capacity = fs.blocks * fs.bsize;
  return { capacity, used: capacity - fs.bavail * fs.bsize };
}

export class ImageGc {
  private readonly high: number;
  private readonly low: number;
  private readonly usage: () => Promise<{ capacity: number; used: number }>;

  constructor(
    private readonly images: ImageService,
    private readonly runtime: RuntimeService,
    dir: string,
    private readonly log: Logger,
    opts: ImageGcOptions = {},
  ) {
    this.high = opts.highPercent ?? 85;
    this.low = opts.lowPercent ?? 80;
    if (!(this.low < this.high))
      throw new Error('image GC: the low threshold must be below the high one');
    this.usage = opts.usage ?? (() => diskUsage(dir));
  }

  /** Removes unused images if the disk is past the high threshold; returns their names. */
  async collect(): Promise<string[]> {
    const { capacity, used } = await this.usage();
    if (capacity <= 0 || (used * 100) / capacity < this.high) return [];
    let toFree = used - (capacity * this.low) / 100;
    const inUse = new Set((await this.runtime.listContainers()).map((c) => c.imageId));
    const candidates = (await this.images.listImages())
      .filter((image) => !inUse.has(image.id))
      .sort((a, b) => b.size - a.size);
    const removed: string[] = [];
    for (const image of candidates) {
      if (toFree <= 0) break;
      await this.remove(image);
      removed.push(...image.names);
      toFree -= image.size;
    }
    this.log.info(
      { removed, usedPercent: Math.round((used * 100) / capacity) },
      'image garbage collection',
    );
    return removed;
  }

  private async remove(image: ImageInfo): Promise<void> {
    // An image stored under several names goes only when the last name does.
    for (const name of image.names.length > 0 ? image.names : [image.id]) {
      await this.images.removeImage(name);
    }
  }
}
