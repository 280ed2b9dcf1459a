import {
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';

import type { Logger } from '../log.js';
import type { SyncMessage } from './conmon.js';
import { randomHex, readJson, readJsonSync, replaceJsonSync } from './fsutil.js';

/**
 * One container monitor kept ready for the next container start: conmon already running
 * for a container id chosen in advance, and the `runc create` it started waiting to read
 * the bundle's config.json, which is a FIFO. The container that takes it writes its spec
 * into the FIFO when it starts, and conmon's and runc's own start-up (conmon's libraries,
 * runc's Go runtime) are behind it: about 9 ms less from the spec to conmon's report on
 * this machine (15 runs each, a busy machine: median 38.5 ms started afresh, 29.3 warm).
 *
 * Only the start that takes it gains; a burst of pods takes the one and starts the rest
 * as before. A new one is made once the runtime has been idle a moment (see busy).
 *
 * The agent's stop releases it (`remove`; `release`: runc reads an empty spec, fails, and
 * conmon exits), since its report can reach only this process. Its id is written to a
 * file before conmon starts, so that after a crash the next runtime finds and releases it.
 */

export interface WarmMonitor {
  id: string;
  /** conmon's sync message, once the spec is written (or the monitor is released). */
  synced: Promise<SyncMessage>;
}

export interface WarmMonitorOptions {
  /** Where the ready monitor's id is kept for a restart. */
  file: string;
  /** The bundle directory of container `id`. */
  bundle: (id: string) => string;
  /** Makes container `id`'s directories, with config.json a FIFO in its bundle. */
  prepare: (id: string) => Promise<void>;
  /** Starts conmon for `id`; resolves with its sync message. */
  start: (id: string) => Promise<SyncMessage>;
  /** Waits for conmon of `id` to end (killing it if it does not). */
  reap: (id: string) => Promise<void>;
  /** Removes container `id`'s directories. */
  remove: (id: string) => Promise<void>;
  /** Whether a container record names `id` (it was taken just before a crash). */
  claimed: (id: string) => Promise<boolean>;
  log: Logger;
}

/** How long the runtime must have been idle before a new monitor is made (as spares). */
const IDLE_DELAY_MS = 25;
const RETRY_DELAY_MS = 30_000;
/** The bundle's spec for a warm monitor is written here at create, into the FIFO at start. */
export const WARM_SPEC = 'config.warm.json';

export class WarmMonitors {
  private ready?: WarmMonitor;
  private filling?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private starts = 0;
  private wanted = false;
  private stopped = false;
  /** Taken monitors whose spec is not written yet, by container id. */
  private readonly taken = new Map<string, Promise<SyncMessage>>();

  constructor(private readonly opts: WarmMonitorOptions) {}

  /** Releases a monitor a previous process left (its report cannot reach this one). */
  async start(): Promise<void> {
    await this.discardLeft();
    this.want();
  }

  private async discardLeft(): Promise<void> {
    const left = await readJson<{ id?: unknown }>(this.opts.file).catch(() => undefined);
    // Only an id as fill writes one: anything else names no directory of ours. One a
    // container's record names is that container's (its removal releases the monitor).
    const id = typeof left?.id === 'string' && /^[0-9a-f]{64}$/.test(left.id) ? left.id : '';
    if (id && !(await this.opts.claimed(id))) await this.discard(id);
    else rmSync(this.opts.file, { force: true });
  }

  /** Runs a sandbox set-up or container start; a monitor is made only when none runs. */
  async busy<T>(work: () => Promise<T>): Promise<T> {
    this.starts++;
    clearTimeout(this.timer);
    try {
      return await work();
    } finally {
      if (--this.starts === 0 && this.wanted) this.refillSoon(IDLE_DELAY_MS);
    }
  }

  /**
   * The ready monitor, now the caller's, or undefined. The caller writes its spec to
   * WARM_SPEC in the bundle and, at start, takes the report with `synced(id)`.
   */
  take(): WarmMonitor | undefined {
    const warm = this.ready;
    this.ready = undefined;
    if (!warm) return undefined;
    this.want();
    this.taken.set(warm.id, warm.synced);
    // The file keeps naming it until the next one replaces it: a restart before the
    // container's record is written then finds it unclaimed and releases it.
    return warm;
  }

  /**
   * The report of the monitor taken for container `id`, once; undefined when this process
   * did not take it (a restart came between the container's create and its start).
   */
  synced(id: string): Promise<SyncMessage> | undefined {
    const synced = this.taken.get(id);
    this.taken.delete(id);
    return synced;
  }

  /** Forgets a taken monitor whose container goes without starting (see release). */
  forget(id: string): void {
    this.taken.delete(id);
  }

  /**
   * Releases the ready monitor, or the one a previous process left, and makes no more
   * (`flyces down`).
   */
  async remove(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.filling;
    const warm = this.ready;
    this.ready = undefined;
    if (warm) await this.discard(warm.id);
    else await this.discardLeft();
  }

  private want(): void {
    this.wanted = true;
    if (this.starts === 0) this.refillSoon(IDLE_DELAY_MS);
  }

  private refillSoon(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.ready || this.filling || this.stopped || this.starts > 0) return;
      this.wanted = false;
      this.filling = this.fill().finally(() => (this.filling = undefined));
    }, delayMs);
    this.timer.unref();
  }

  private async fill(): Promise<void> {
    const id = randomHex(32);
    try {
      // Named before it exists, so a crash midway leaves something to clean up by.
      mkdirSync(path.dirname(this.opts.file), { recursive: true });
      replaceJsonSync(this.opts.file, { id });
      await this.opts.prepare(id);
    } catch (err) {
      this.opts.log.warn({ err }, 'could not prepare a warm container monitor');
      await this.discard(id).catch(() => undefined);
      this.wanted = true;
      this.refillSoon(RETRY_DELAY_MS);
      return;
    }
    const synced = this.opts.start(id);
    const warm: WarmMonitor = { id, synced };
    // A report while it is still ready means it failed (its helper or runc died): the
    // next start must not take it.
    synced.then(
      () => this.dropIfReady(warm),
      (err: unknown) => {
        this.opts.log.warn({ err }, 'a warm container monitor failed');
        this.dropIfReady(warm);
      },
    );
    if (this.stopped) return void (await this.discard(id));
    this.ready = warm;
    this.opts.log.debug({ container: id }, 'warm container monitor ready');
  }

  private dropIfReady(warm: WarmMonitor): void {
    if (this.ready !== warm) return;
    this.ready = undefined;
    this.discard(warm.id)
      .catch((err: unknown) => this.opts.log.warn({ err }, 'warm monitor cleanup'))
      .finally(() => this.want());
  }

  /** Releases monitor `id`, waits for its conmon to end, and removes its directories. */
  private async discard(id: string): Promise<void> {
    this.taken.delete(id);
    release(this.opts.bundle(id));
    await this.opts.reap(id);
    await this.opts.remove(id);
    this.removeFileOf(id);
  }

  /** Deletes the file if it still names monitor `id`. */
  private removeFileOf(id: string): void {
    let named: { id?: unknown } | undefined;
    try {
      named = readJsonSync<{ id?: unknown }>(this.opts.file);
    } catch {
      named = undefined;
    }
    if (named === undefined || named.id === id) rmSync(this.opts.file, { force: true });
  }
}

/**
 * Lets a `runc create` that waits on the bundle's config.json FIFO go on with an empty spec,
 * which it refuses: it exits and its conmon with it. Nothing happens when config.json is
 * not a FIFO or nobody waits on it.
 */
export function release(bundle: string): void {
  const file = path.join(bundle, 'config.json');
  try {
    if (!lstatSync(file).isFIFO()) return;
    closeSync(openSync(file, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // No FIFO, or no reader (ENXIO): nothing waits.
  }
}

/**
 * Writes `spec` into the FIFO a warm monitor's `runc create` waits on. Throws when nobody
 * waits (ENXIO) or the spec does not fit the pipe at once (EAGAIN: this process must not
 * wait for runc to read).
 */
export function writeSpec(bundle: string, spec: Buffer): void {
  const flags = constants.O_WRONLY | constants.O_NONBLOCK;
  const fd = openSync(path.join(bundle, 'config.json'), flags);
  try {
    let written = 0;
    while (written < spec.length) written += writeSync(fd, spec, written);
  } finally {
    closeSync(fd);
  }
}

/** Whether the bundle of a container holds a warm monitor's spec (see WARM_SPEC). */
export function hasWarmSpec(bundle: string): boolean {
  return existsSync(path.join(bundle, WARM_SPEC));
}
