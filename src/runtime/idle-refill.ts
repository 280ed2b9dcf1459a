/**
 * What the runtime makes ahead of the next start (a spare pod network, a warm container
 * monitor) is made only while no start runs: a sandbox set-up, container create or start
 * has the machine first. `Starts` counts the starts in flight; each `Refill` makes its
 * thing again once none has run for IDLE_DELAY_MS, and retries a failed making after
 * RETRY_DELAY_MS (or sooner, once a start has come and gone).
 */

/** How long the runtime must have been idle before something is made again. */
const IDLE_DELAY_MS = 25;
/** After a failed making, the next one waits this long (unless a start ends first). */
const RETRY_DELAY_MS = 30_000;

export class Starts {
  private running = 0;
  private readonly refills = new Set<Refill>();

  /** Runs a start; no refill begins while one runs. */
  async busy<T>(work: () => Promise<T>): Promise<T> {
    this.running++;
    for (const refill of this.refills) refill.hold();
    try {
      return await work();
    } finally {
      if (--this.running === 0) for (const refill of this.refills) refill.idle();
    }
  }

  /** Whether a start is in flight. */
  get busyNow(): boolean {
    return this.running > 0;
  }

  /**
   * A refill of one thing: `fill` makes it (and reports its own failure with `retry`);
   * `ready` tells whether one is ready already.
   */
  refill(fill: () => Promise<void>, ready: () => boolean): Refill {
    const refill = new Refill(this, fill, ready);
    this.refills.add(refill);
    return refill;
  }
}

export class Refill {
  private timer?: NodeJS.Timeout;
  private wanted = false;
  private over = false;
  /** The making in flight, or a cleanup that the next making waits for (see track). */
  private filling?: Promise<void>;

  constructor(
    private readonly starts: Starts,
    private readonly fill: () => Promise<void>,
    private readonly ready: () => boolean,
  ) {}

  /** Whether `stop` was called: a making that ends now discards what it made. */
  get stopped(): boolean {
    return this.over;
  }

  /** Asks for one to be made, once the runtime is idle. */
  want(): void {
    this.wanted = true;
    if (!this.starts.busyNow) this.soon(IDLE_DELAY_MS);
  }

  /** The making failed: it is tried again later. */
  retry(): void {
    this.wanted = true;
    this.soon(RETRY_DELAY_MS);
  }

  /** Runs `cleanup` in the making's place: nothing is made until it ends. */
  track(cleanup: Promise<void>): void {
    this.filling = cleanup.finally(() => {
      this.filling = undefined;
      if (this.wanted) this.soon(IDLE_DELAY_MS);
    });
  }

  /** Makes no more; waits for a making or cleanup in flight. */
  async stop(): Promise<void> {
    this.over = true;
    clearTimeout(this.timer);
    await this.filling;
  }

  /** A start began (Starts.busy). */
  hold(): void {
    clearTimeout(this.timer);
  }

  /** The last start in flight ended (Starts.busy). */
  idle(): void {
    if (this.wanted) this.soon(IDLE_DELAY_MS);
  }

  private soon(delayMs: number): void {
    if (this.over) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.ready() || this.filling || this.over || this.starts.busyNow) return;
      this.wanted = false;
      this.filling = this.fill().finally(() => (this.filling = undefined));
    }, delayMs);
    this.timer.unref();
  }
}
