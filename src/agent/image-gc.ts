import { statfs } from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { ImageInfo, ImageService, RuntimeService } from '../runtime/runtime.js';

/**
 * Image garbage collection, as kubelet does it: when the disk holding the image store is at
 * or past the high threshold, images that no container (running or exited, so also those
 * of pods waiting to restart) uses are removed until usage is back under the low threshold,
 * the least recently used first. An image is used while a container of it exists; one no
 * container has used since this agent started counts from when the agent first saw it, and
 * is kept for a minimum age (kubelet's imageMinimumGCAge, 2 minutes) after that, so that an
 * image just pulled for a container about to be created is not taken from under it.
 *
 * Like kubelet, the times are held in memory: after a restart every image counts as first
 * seen then. A high threshold of 100 turns collection off, as in kubelet.
 */

export interface ImageGcOptions {
  /** Percent of the disk used at which collection starts; default 85, as kubelet. */
  highPercent?: number;
  /** Percent collection brings usage down to; default 80, as kubelet. */
  lowPercent?: number;
  /** Milliseconds an unused image is kept after it was first seen; default 2 minutes. */
  minAgeMs?: number;
  /** The disk's size and bytes used; reads the file system of `dir` by default. */
  usage?: () => Promise<{ capacity: number; used: number }>;
  /** The clock, in ms; Date.now by default. */
  now?: () => number;
}

export async function diskUsage(dir: string): Promise<{ capacity: number; used: number }> {
  const fs = await statfs(dir);
  const capacity = fs.blocks * fs.bsize;
  return { capacity, used: capacity - fs.bavail * fs.bsize };
}

/**
 * What is wrong with a pair of thresholds, in the words of kubelet's flags; undefined when
 * they are usable. Each is a whole percent from 0 to 100, the low one below the high one.
 */
export function thresholdProblem(high: number, low: number): string | undefined {
  for (const [flag, value] of [
    ['--image-gc-high-threshold', high],
    ['--image-gc-low-threshold', low],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 100) {
      return `${flag} must be a whole percent from 0 to 100, not ${value}`;
    }
  }
  if (low >= high) {
    return `--image-gc-low-threshold (${low}) must be less than --image-gc-high-threshold (${high})`;
  }
  return undefined;
}

const DEFAULT_MIN_AGE_MS = 120_000;

/** When this agent first saw an image, and when a container last used it. */
interface ImageRecord {
  firstSeen: number;
  lastUsed: number;
}

export class ImageGc {
  private readonly high: number;
  private readonly low: number;
  private readonly minAgeMs: number;
  private readonly usage: () => Promise<{ capacity: number; used: number }>;
  private readonly now: () => number;
  private readonly records = new Map<string, ImageRecord>();

  constructor(
    private readonly images: ImageService,
    private readonly runtime: RuntimeService,
    dir: string,
    private readonly log: Logger,
    opts: ImageGcOptions = {},
  ) {
    this.high = opts.highPercent ?? 85;
    this.low = opts.lowPercent ?? 80;
    const problem = thresholdProblem(this.high, this.low);
    if (problem) throw new Error(`image GC: ${problem}`);
    this.minAgeMs = opts.minAgeMs ?? DEFAULT_MIN_AGE_MS;
    this.usage = opts.usage ?? (() => diskUsage(dir));
    this.now = opts.now ?? Date.now;
  }

  /**
   * Notes which images exist and which containers use; returns the images no container
   * uses, least recently used first. Runs at every collect(), whether or not it removes.
   */
  private async detect(): Promise<ImageInfo[]> {
    const now = this.now();
    const inUse = new Set((await this.runtime.listContainers()).map((c) => c.imageId));
    const images = await this.images.listImages();
    const present = new Set(images.map((i) => i.id));
    for (const id of this.records.keys()) if (!present.has(id)) this.records.delete(id);
    for (const image of images) {
      const record = this.records.get(image.id) ?? { firstSeen: now, lastUsed: 0 };
      if (inUse.has(image.id)) record.lastUsed = now;
      this.records.set(image.id, record);
    }
    const key = (i: ImageInfo) => this.records.get(i.id) as ImageRecord;
    return images
      .filter((i) => !inUse.has(i.id))
      .sort((a, b) => key(a).lastUsed - key(b).lastUsed || key(a).firstSeen - key(b).firstSeen);
  }

  /** Removes unused images if the disk is at or past the high threshold; returns their names. */
  async collect(): Promise<string[]> {
    const unused = await this.detect();
    if (this.high >= 100) return [];
    const { capacity, used } = await this.usage();
    if (capacity <= 0 || (used * 100) / capacity < this.high) return [];
    let toFree = used - (capacity * this.low) / 100;
    const now = this.now();
    const removed: string[] = [];
    for (const image of unused) {
      if (toFree <= 0) break;
      const record = this.records.get(image.id) as ImageRecord;
      // Maybe pulled just now, for a container about to be created (kubelet's reason too).
      if (now - record.firstSeen < this.minAgeMs) continue;
      await this.remove(image);
      this.records.delete(image.id);
      removed.push(...(image.names.length > 0 ? image.names : [image.id]));
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
