import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

import type { Logger } from '../log.js';
import { netnsExists, netnsPath, type PodNetwork } from './pod-network.js';
import { randomHex, readJson, replaceJsonSync } from './fsutil.js';
import type { Refill, Starts } from './idle-refill.js';

/**
 * One network namespace kept ready for the next sandbox, already attached to the pod
 * network: making and attaching a namespace takes a good part of a pod's start-up, and its
 * processes slow `runc create` when they run beside it. A sandbox that finds the spare
 * takes it as it is (namespace, address, attachment id); a new one is made a moment
 * later, when the start-up is over (see idle-refill.ts). When there is none (a burst of
 * pods took it), sandboxes make their own as before.
 *
 * The spare is described in a file under the runtime's root until a sandbox's record
 * names it, so that after a crash it is either taken over, left to the sandbox that
 * claimed it, or detached and deleted: never lost. `flyces down` deletes it.
 */

export interface SpareNetwork {
  netns: string;
  /** The id its attachment was made under (detaching needs the same). */
  cniId: string;
  cniConfig: Record<string, unknown>;
  /** Set once attached. */
  ip?: string;
}

export class SpareNetworks {
  private ready?: SpareNetwork;
  /** Makes a new spare once no start runs (see idle-refill.ts). */
  private readonly refill: Refill;
  /** The namespace of a spare that was taken while the file still describes it. */
  private taken?: string;

  /**
   * `claimed` tells whether a sandbox record names a namespace (the spare was taken just
   * before a crash); `starts` are the runtime's, which a new spare waits for.
   */
  constructor(
    private readonly network: PodNetwork,
    private readonly file: string,
    private readonly log: Logger,
    private readonly claimed: (netns: string) => Promise<boolean>,
    starts: Starts,
  ) {
    this.refill = starts.refill(
      () => this.fill(),
      () => this.ready !== undefined,
    );
  }

  /**
   * Takes over the spare a previous process left, if it is whole, unclaimed and on the
   * current pod network; cleans up what is left of one that is not. Then makes one if
   * there is none.
   */
  async start(): Promise<void> {
    const read = await readJson<unknown>(this.file).catch(() => undefined);
    // A file this class did not write (garbage, or naming a path outside the namespace
    // directory) is dropped without touching what it names.
    const left = isSpareNetwork(read) ? read : undefined;
    if (left) {
      // One made for another pod network (bridge, CIDR) before a restart is not taken.
      const current =
        JSON.stringify(left.cniConfig) === JSON.stringify(this.network.bridgeConfig());
      if (await this.claimed(left.netns)) rmSync(this.file, { force: true });
      // A namespace's file after a reboot (where /var/run is on disk) is no namespace.
      else if (current && left.ip && netnsExists(left.netns)) this.ready = left;
      else await this.discard(left);
    } else rmSync(this.file, { force: true });
    if (!this.ready) this.refill.want();
  }

  /**
   * The ready spare, now the caller's, or undefined. The caller records it as its own and
   * then calls `recorded`.
   */
  take(): SpareNetwork | undefined {
    const spare = this.ready;
    this.ready = undefined;
    if (!spare) return undefined;
    this.refill.want();
    if (existsSync(netnsPath(spare.netns))) return spare;
    // Its namespace was deleted behind the runtime's back: the caller makes its own, and
    // the spare's address is released before the next spare is made.
    this.log.warn({ netns: spare.netns }, 'the spare pod network namespace is gone');
    this.refill.track(
      this.discard(spare).catch((err: unknown) =>
        this.log.warn({ err, netns: spare.netns }, 'spare cleanup'),
      ),
    );
    return undefined;
  }

  /**
   * The taker's record names the spare now: its file no longer needs to. The file is left
   * for the next spare's description to replace (or `remove` to delete), rather than
   * deleted on the way to a container's start; until then, a restart finds it claimed by
   * that record and deletes it (see start).
   */
  recorded(spare: SpareNetwork): void {
    this.taken = spare.netns;
  }

  /** Deletes the spare (namespace, address, file) and makes no more. */
  async remove(): Promise<void> {
    await this.refill.stop();
    const spare = this.ready;
    this.ready = undefined;
    if (spare) await this.discard(spare);
    else if (this.taken !== undefined) this.removeFileOf(this.taken);
  }

  /** Deletes the file if it still describes the spare of namespace `netns`. */
  private removeFileOf(netns: string): void {
    let named: string | undefined;
    try {
      named = (JSON.parse(readFileSync(this.file, 'utf8')) as SpareNetwork).netns;
    } catch {
      return;
    }
    if (named === netns) rmSync(this.file, { force: true });
  }

  private async fill(): Promise<void> {
    const spare: SpareNetwork = {
      netns: `flyces-${randomHex(6)}`,
      cniId: randomHex(32),
      cniConfig: this.network.bridgeConfig(),
    };
    try {
      // Described before it exists, so a crash midway leaves something to clean up by.
      mkdirSync(path.dirname(this.file), { recursive: true });
      replaceJsonSync(this.file, spare);
      this.taken = undefined;
      spare.ip = (await this.network.attach(spare.cniId, spare.netns, spare.cniConfig)).ip;
      replaceJsonSync(this.file, spare);
    } catch (err) {
      this.log.warn({ err, netns: spare.netns }, 'could not make a spare pod network');
      await this.discard(spare).catch(() => undefined);
      this.refill.retry();
      return;
    }
    if (this.refill.stopped) return void (await this.discard(spare));
    this.ready = spare;
    this.log.debug({ netns: spare.netns, ip: spare.ip }, 'spare pod network ready');
  }

  /** Detaches and deletes a spare's namespace, then its file. */
  private async discard(spare: SpareNetwork): Promise<void> {
    // DEL releases the address even when the namespace is gone (after a reboot).
    const detached = this.network.detach(spare.cniId, spare.netns, spare.cniConfig, spare.ip);
    await detached.catch((err: unknown) => {
      this.log.warn({ err, netns: spare.netns }, 'could not detach a spare pod network');
    });
    if (existsSync(netnsPath(spare.netns))) await this.network.deleteNetns(spare.netns);
    rmSync(this.file, { force: true });
  }
}

/** Whether `value` describes a spare as `fill` writes one: a plain namespace name of ours. */
function isSpareNetwork(value: unknown): value is SpareNetwork {
  const v = value as Partial<SpareNetwork> | null | undefined;
  return (
    typeof v?.netns === 'string' &&
    /^flyces-[0-9a-z]+$/.test(v.netns) &&
    typeof v.cniId === 'string' &&
    /^[0-9a-f]+$/.test(v.cniId) &&
    typeof v.cniConfig === 'object' &&
    v.cniConfig !== null &&
    (v.ip === undefined || typeof v.ip === 'string')
  );
}

/** Where a runtime root keeps its spare's description. */
export function spareFile(root: string): string {
  return path.join(root, 'spare-network.json');
}
