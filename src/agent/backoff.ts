/**
 * Restart back-off for crashed containers, with Kubernetes' timing: the first crash restarts
 * at once, later ones wait 10 s, then 20 s, doubling up to 5 minutes; a container that ran
 * for 10 minutes before it ended starts over with no wait.
 */
export class RestartBackoff {
  private readonly entries = new Map<string, { delayMs: number; restartedAt: number }>();

  constructor(
    private readonly initialMs = 10_000,
    private readonly maxMs = 300_000,
    private readonly resetAfterMs = 600_000,
  ) {}

  /**
   * Milliseconds still to wait before `key` may restart, given its last run; 0 when it may
   * restart now.
   */
  remaining(key: string, startedAt: number, finishedAt: number, now = Date.now()): number {
    const entry = this.entries.get(key);
    if (!entry) return 0;
    if (finishedAt - startedAt >= this.resetAfterMs) {
      this.entries.delete(key);
      return 0;
    }
    return Math.max(0, entry.restartedAt + entry.delayMs - now);
  }

  /** The back-off `key` is in, in ms (what a CrashLoopBackOff message names); 0 if none. */
  period(key: string): number {
    return this.entries.get(key)?.delayMs ?? 0;
  }

  /** Records a restart of `key` now; the next one waits twice as long as the last. */
  restarted(key: string, now = Date.now()): void {
    const entry = this.entries.get(key);
    if (!entry) this.entries.set(key, { delayMs: this.initialMs, restartedAt: now });
    else {
      entry.delayMs = Math.min(this.maxMs, entry.delayMs * 2);
      entry.restartedAt = now;
    }
  }

  forget(prefix: string): void {
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.entries.delete(key);
  }
}
