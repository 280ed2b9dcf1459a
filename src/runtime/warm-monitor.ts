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
import { isErrno, randomHex, readJson, readJsonSync, replaceJsonSync } from './fsutil.js';
import type { Refill, Starts } from './idle-refill.js';

/**
 * One container monitor kept ready for the next container start: conmon already running
 * for a container id chosen in advance, and the `runc create` it started waiting to read
 * the bundle's config.json, which is a FIFO. The container that takes it writes its spec
 * into the FIFO when it starts, and conmon's and runc's own start-up (conmon's libraries,
 * runc's Go runtime) are behind it: about 9 ms less from the spec to conmon's report on
 * this machine (15 runs each, a busy machine: median 38.5 ms started afresh, 29.3 warm).
 *
 * Only the start that takes it gains; a burst of pods takes the one and starts the rest
 * as before. A new one is made once the runtime has been idle a moment (idle-refill.ts).
 *
 * It is ready only once its runc has the FIFO open: this process then opens the FIFO's
 * write end and holds it until the spec goes in. A spec written earlier would find no
 * reader, and a release earlier would leave runc to wait on the FIFO for ever.
 *
 * The agent's stop releases it (`remove`: the write end is closed unwritten, so runc reads
 * an empty spec, fails, and conmon exits), since its report can reach only this process.
 * A crash closes the write end too. Its id is written to a file before conmon starts, so
 * that the next runtime finds and releases one left before its runc had the FIFO open,
 * and removes its directories.
 */

export interface WarmMonitor {
  id: string;
  /** conmon's sync message, once the spec is written (or the monitor is released). */
  synced: Promise<SyncMessage>;
  /**
   * The FIFO's write end (non-blocking), until the spec is written or the monitor let go
   * (see writeSpec, letGo); closed unwritten, runc reads an empty spec.
   */
  fd?: number;
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
  /** The runtime's starts: a new monitor waits until none runs (see idle-refill.ts). */
  starts: Starts;
  log: Logger;
}

/** How long a new monitor's runc may take to open the FIFO, and how often it is looked at. */
const OPEN_WAIT_MS = 10_000;
const OPEN_POLL_MS = 5;
/** The bundle's spec for a warm monitor is written here at create, into the FIFO at start. */
export const WARM_SPEC = 'config.warm.json';

export class WarmMonitors {
  private ready?: WarmMonitor;
  private readonly refill: Refill;
  /** Taken monitors whose spec is not written yet, by container id. */
  private readonly taken = new Map<string, WarmMonitor>();

  /**
   * A sandbox set-up, container create or start runs within `opts.starts.busy`, so no
   * monitor is made meanwhile, and the file keeps naming a monitor a create took until the
   * container's record names it (or the create has let it go): a crash in between leaves
   * it to be released.
   */
  constructor(private readonly opts: WarmMonitorOptions) {
    this.refill = opts.starts.refill(
      () => this.fill(),
      () => this.ready !== undefined,
    );
  }

  /** Releases a monitor a previous process left (its report cannot reach this one). */
  async start(): Promise<void> {
    await this.discardLeft();
    this.refill.want();
  }

  private async discardLeft(): Promise<void> {
    const left = await readJson<{ id?: unknown }>(this.opts.file).catch(() => undefined);
    // Only an id as fill writes one: anything else names no directory of ours. One a
    // container's record names is that container's (its removal releases the monitor).
    const id = typeof left?.id === 'string' && /^[0-9a-f]{64}$/.test(left.id) ? left.id : '';
    if (id && !(await this.opts.claimed(id))) await this.discard(id);
    else rmSync(this.opts.file, { force: true });
  }

  /**
   * The ready monitor, or undefined; call it within the starts' `busy`. The caller writes its spec to
   * WARM_SPEC in the bundle and, at start, takes the monitor over with `handOver(id)`.
   */
  take(): WarmMonitor | undefined {
    const warm = this.ready;
    this.ready = undefined;
    if (!warm) return undefined;
    this.refill.want();
    this.taken.set(warm.id, warm);
    // The file keeps naming it until the next one replaces it: a restart before the
    // container's record is written then finds it unclaimed and releases it.
    return warm;
  }

  /**
   * The monitor taken for container `id`, once, now the caller's: it writes the spec
   * (writeSpec) or lets it go (letGo). Undefined when this process did not take it (a
   * restart came between the container's create and its start) or has let it go.
   */
  handOver(id: string): WarmMonitor | undefined {
    const warm = this.taken.get(id);
    this.taken.delete(id);
    return warm;
  }

  /** Lets go of a taken monitor whose container goes without starting (see letGo). */
  forget(id: string): void {
    const warm = this.taken.get(id);
    this.taken.delete(id);
    if (warm) letGo(warm);
  }

  /**
   * Releases the ready monitor, or the one a previous process left, lets go of the taken
   * ones (their containers start afresh), and makes no more (the agent's stop, `flyces
   * down`).
   */
  async remove(): Promise<void> {
    await this.refill.stop();
    for (const id of [...this.taken.keys()]) this.forget(id);
    const warm = this.ready;
    this.ready = undefined;
    if (warm) await this.discard(warm.id, warm);
    else await this.discardLeft();
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
      this.refill.retry();
      return;
    }
    const synced = this.opts.start(id);
    const fd = await openWhenRead(this.opts.bundle(id), synced);
    if (fd === undefined) {
      this.opts.log.warn({ container: id }, 'a warm container monitor did not open its spec');
      await this.discard(id).catch(() => undefined);
      this.refill.retry();
      return;
    }
    const warm: WarmMonitor = { id, synced, fd };
    // A report while it is still ready means it failed (its helper or runc died): the
    // next start must not take it.
    synced.then(
      () => this.dropIfReady(warm),
      (err: unknown) => {
        this.opts.log.warn({ err }, 'a warm container monitor failed');
        this.dropIfReady(warm);
      },
    );
    if (this.refill.stopped) return void (await this.discard(id, warm));
    this.ready = warm;
    this.opts.log.debug({ container: id }, 'warm container monitor ready');
  }

  private dropIfReady(warm: WarmMonitor): void {
    if (this.ready !== warm) return;
    this.ready = undefined;
    this.discard(warm.id, warm)
      .catch((err: unknown) => this.opts.log.warn({ err }, 'warm monitor cleanup'))
      .finally(() => this.refill.want());
  }

  /**
   * Releases monitor `id` (`warm` when this process holds it), waits for its conmon to
   * end, and removes its directories.
   */
  private async discard(id: string, warm?: WarmMonitor): Promise<void> {
    this.taken.delete(id);
    if (warm) letGo(warm);
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
 * Opens the write end of the FIFO in `bundle` once a reader (its runc) has it open;
 * undefined when conmon reports first (runc failed), after OPEN_WAIT_MS, or when there is
 * no FIFO.
 */
async function openWhenRead(bundle: string, synced: Promise<unknown>): Promise<number | undefined> {
  let reported = false;
  const over = () => void (reported = true);
  synced.then(over, over);
  const deadline = Date.now() + OPEN_WAIT_MS;
  for (;;) {
    try {
      // Without a reader this fails (ENXIO) rather than wait, and leaves no end of file.
      return openSync(path.join(bundle, 'config.json'), constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      if (!isErrno(err, 'ENXIO')) return undefined;
    }
    if (reported || Date.now() > deadline) return undefined;
    // Not unref'd: a close that waits for this must not see the process end first.
    await new Promise((resolve) => setTimeout(resolve, OPEN_POLL_MS));
  }
}

/** Closes the FIFO's write end of `warm`, once: its runc reads an empty spec and fails. */
export function letGo(warm: WarmMonitor): void {
  if (warm.fd === undefined) return;
  const fd = warm.fd;
  warm.fd = undefined;
  closeSync(fd);
}

/**
 * Writes `spec` into the FIFO a warm monitor's `runc create` reads, and closes it. Throws
 * when runc is gone (EPIPE), the monitor was let go, or the spec does not fit the pipe at
 * once (EAGAIN: this process must not wait for runc to read); runc then reads part of a
 * spec at most, and fails.
 */
export function writeSpec(warm: WarmMonitor, spec: Buffer): void {
  if (warm.fd === undefined) throw new Error(`the warm monitor of ${warm.id} was let go`);
  try {
    let written = 0;
    while (written < spec.length) written += writeSync(warm.fd, spec, written);
  } finally {
    letGo(warm);
  }
}

/** Whether the bundle of a container holds a warm monitor's spec (see WARM_SPEC). */
export function hasWarmSpec(bundle: string): boolean {
  return existsSync(path.join(bundle, WARM_SPEC));
}
