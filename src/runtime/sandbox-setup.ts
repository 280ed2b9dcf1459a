/**
 * The steps of a sandbox that `runSandbox` is still setting up, so that containers can be
 * made for it meanwhile: a container's bundle and root file system need only what the
 * sandbox will be (its hostname and namespace name), the container's record must follow
 * the sandbox's on disk, `runc create` needs the network namespace (the spare's at once,
 * or a new one, which comes with its attachment), and the start of the container's
 * process needs the network attached. Waiting for each step instead of for the whole
 * set-up takes the records' writes, and with the spare the network, off a pod's critical
 * path.
 */
import type { SandboxRecord } from './records.js';

/** One step other calls may wait for; settles once, and never goes unhandled. */
class Step {
  readonly done: Promise<void>;
  private settle!: (err?: Error) => void;
  private settled = false;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (err) => (err ? reject(err) : resolve());
    });
    // Nobody may be waiting when a step fails; the failure is reported by runSandbox.
    this.done.catch(() => undefined);
  }

  resolve(): void {
    if (this.settled) return;
    this.settled = true;
    this.settle();
  }

  reject(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(err);
  }
}

/** The set-up of one sandbox, from the moment runSandbox is called until it returns. */
export class SandboxSetup {
  /**
   * The sandbox's record is made (in memory, as `sandbox`): containers may prepare their
   * bundles and root file systems.
   */
  readonly described = new Step();
  /** What the set-up will record for the sandbox, once `described`. */
  sandbox?: SandboxRecord;
  /** The sandbox's record is on disk: its containers may be recorded. */
  readonly recorded = new Step();
  /** The network namespace and the /etc files exist: `runc create` may run. */
  readonly netns = new Step();
  /** The network is attached and /etc/hosts names the pod's address: processes may start. */
  readonly ready = new Step();
  /** Set when a step failed; a container created from then on is refused. */
  failure?: Error;
  /** Ids of the containers created for the sandbox while it was being set up. */
  readonly containers = new Set<string>();
  /** createContainer calls in flight for this sandbox; cleanup after a failure waits for them. */
  private readonly creating = new Set<Promise<unknown>>();

  /** Fails every step not yet done. */
  fail(err: Error): void {
    this.failure ??= err;
    for (const step of this.steps()) step.reject(err);
  }

  /** Resolves every step (the sandbox was ready already). */
  finish(): void {
    for (const step of this.steps()) step.resolve();
  }

  private steps(): Step[] {
    return [this.described, this.recorded, this.netns, this.ready];
  }

  /** Runs a createContainer call for this sandbox, tracked until it settles. */
  track<T>(work: Promise<T>): Promise<T> {
    this.creating.add(work);
    void work.catch(() => undefined).finally(() => this.creating.delete(work));
    return work;
  }

  /** Resolves once no createContainer call for this sandbox is in flight. */
  async settled(): Promise<void> {
    while (this.creating.size > 0) await Promise.allSettled([...this.creating]);
  }
}

/** The set-ups in flight, by sandbox id. */
export class SandboxSetups {
  private readonly byId = new Map<string, SandboxSetup>();

  /**
   * Registers a set-up for `id` unless one is in flight already; returns the one to use
   * and whether the caller owns it (and must end it).
   */
  begin(id: string): { setup: SandboxSetup; owner: boolean } {
    const current = this.byId.get(id);
    if (current) return { setup: current, owner: false };
    const setup = new SandboxSetup();
    this.byId.set(id, setup);
    return { setup, owner: true };
  }

  get(id: string): SandboxSetup | undefined {
    return this.byId.get(id);
  }

  end(id: string, setup: SandboxSetup): void {
    if (this.byId.get(id) === setup) this.byId.delete(id);
  }
}
