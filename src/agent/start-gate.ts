/**
 * Lets a few pods start at a time, in the order they asked. Starting a pod (its network,
 * `runc create`, conmon) is mostly CPU; fifty at once share the machine fifty ways and all
 * become Running near the end, where a few at a time become Running one after the other
 * and the last no later. Pod syncs themselves run without a bound (see the agent), so only
 * the start-up waits here, never a pod's termination or the status of running ones.
 *
 * An owner (a pod's uid) inside `run` runs its nested calls at once, so a pod whose start
 * starts its containers never waits behind itself. A slot is given to the next owner when
 * its holder ends, or after `holdLimitMs` even if it has not: an image pull or a postStart
 * hook inside a start-up then delays the pods behind it by that much at most, never by
 * its whole length.
 */
export class StartGate {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  /** Owners inside `run`, with how many of their calls are in progress. */
  private readonly inside = new Map<string, number>();

  constructor(
    slots: number,
    private readonly holdLimitMs = 2_000,
  ) {
    if (!Number.isInteger(slots) || slots < 1) throw new Error(`slots must be >= 1: ${slots}`);
    this.free = slots;
  }

  /** Runs fn once `owner` holds a slot (at once if it holds one already). */
  async run<T>(owner: string, fn: () => Promise<T>): Promise<T> {
    const depth = this.inside.get(owner);
    if (depth !== undefined) {
      this.inside.set(owner, depth + 1);
      try {
        return await fn();
      } finally {
        this.leave(owner);
      }
    }
    this.inside.set(owner, 1);
    await this.acquire();
    const release = this.releaseOnce();
    const timer = setTimeout(release, this.holdLimitMs);
    try {
      return await fn();
    } finally {
      clearTimeout(timer);
      release();
      this.leave(owner);
    }
  }

  /** Owners waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  private acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private releaseOnce(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }

  private leave(owner: string): void {
    const depth = this.inside.get(owner)!;
    if (depth > 1) this.inside.set(owner, depth - 1);
    else this.inside.delete(owner);
  }
}
