import type { Logger } from '../log.js';
import { run } from '../runtime/exec.js';
import {
  buildRuleset,
  deleteScript,
  replaceScript,
  tableName,
  type HostPort,
  type RulesOptions,
} from './rules.js';
import type { EndpointSlice, Service } from './types.js';

/**
 * The node proxy: keeps the `ip flyces` nftables table equal to what the current Services
 * and EndpointSlices ask for.
 *
 * Level-triggered: `changed()` only marks the state dirty; a sync re-reads the whole
 * state from the source, builds the table and replaces it in one `nft -f` transaction
 * (delete and re-create), so a reader of the kernel never sees half a ruleset. Bursts of
 * changes are coalesced: syncs start at least `minIntervalMs` (100 ms) apart, and a change
 * is applied by the first sync that starts after it, so within about 100 ms plus one
 * sync's duration, well under the 1 s the agent promises. A failed sync is retried after
 * 1 s. Existing connections keep their conntrack NAT binding when the table is replaced;
 * only new connections see the new endpoints. UDP flows to a removed endpoint stay until
 * their conntrack entry expires (no conntrack flushing yet).
 */

/** Where the proxier reads the cluster state; typically backed by two informer caches. */
export interface ProxySource {
  services(): Iterable<Service>;
  endpointSlices(): Iterable<EndpointSlice>;
  /** The ports this node's pods publish (hostPort); none when absent. */
  hostPorts?(): Iterable<HostPort>;
}

/** Runs one `nft -f` script; rejects when nft refuses it. */
export type NftRunner = (script: string) => Promise<void>;

export interface ProxierOptions extends RulesOptions {
  source: ProxySource;
  /** Named network namespace (`ip netns`) to program; default the proxier's own. */
  netns?: string;
  /** Least time between the starts of two syncs; default 100 ms. */
  minIntervalMs?: number;
  /** Re-apply even without a change this often, repairing outside edits; default 60 s. */
  resyncMs?: number;
  /** How scripts reach nft; default runs `nft -f -` (inside `netns` when given). */
  nft?: NftRunner;
  /** Called after every sync attempt, e.g. to feed a latency histogram. */
  onSync?: (record: SyncRecord) => void;
  log: Logger;
}

/** What one sync did and how long it took. */
export interface SyncRecord {
  ok: boolean;
  /** When it started, on the `performance.now()` clock. */
  startedAt: number;
  /** False when the table text was unchanged and nft was not run. */
  applied: boolean;
  /** Time building and applying the table. */
  durationMs: number;
  /** Time from the oldest change it covers to its end; undefined when it covers none. */
  latencyMs?: number;
  routed: number;
  rejecting: number;
  error?: string;
}

export interface ProxierStats {
  syncs: number;
  failures: number;
  last?: SyncRecord;
  /** The longest change-to-applied latency seen so far. */
  maxLatencyMs: number;
}

const RETRY_MS = 1000;

/** Builds the default NftRunner: `nft -f -`, through `ip netns exec` when netns is set. */
export function nftRunner(netns?: string): NftRunner {
  return async (script) => {
    const args = ['-f', '-'];
    if (netns === undefined) await run('nft', args, { input: script, timeoutMs: 30_000 });
    else await run('ip', ['netns', 'exec', netns, 'nft', ...args], { input: script });
  };
}

/** Keeps the node's Service rules in step with the cluster; see the file comment. */
export class Proxier {
  private readonly nft: NftRunner;
  private readonly minInterval: number;
  private dirtySince?: number;
  private force = false;
  private lastStart = -Infinity;
  private lastText?: string;
  private timer?: NodeJS.Timeout;
  private resync?: NodeJS.Timeout;
  private running?: Promise<void>;
  private started = false;
  private stopped = false;
  private waiters: { since: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly counters: ProxierStats = { syncs: 0, failures: 0, maxLatencyMs: 0 };

  constructor(private readonly options: ProxierOptions) {
    this.nft = options.nft ?? nftRunner(options.netns);
    this.minInterval = options.minIntervalMs ?? 100;
    buildRuleset([], [], options);
  }

  /** Starts syncing: the first sync runs at once. Idempotent. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    const every = this.options.resyncMs ?? 60_000;
    this.resync = setInterval(() => {
      this.force = true;
      this.schedule();
    }, every);
    this.resync.unref();
    this.changed();
  }

  /** Records that Services or EndpointSlices changed; safe to call for every event. */
  changed(): void {
    if (this.stopped) return;
    this.dirtySince ??= performance.now();
    this.schedule();
  }

  /**
   * Resolves once a sync that started after this call has succeeded; rejects if the
   * proxier is stopped first. Marks the state changed, so it also asks for that sync.
   */
  synced(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('proxier is stopped'));
    const since = performance.now();
    const done = new Promise<void>((resolve, reject) => {
      this.waiters.push({ since, resolve, reject });
    });
    this.changed();
    return done;
  }

  /** Counters and the last sync's record. */
  stats(): ProxierStats {
    return { ...this.counters };
  }

  /** Stops syncing, waits for a sync in flight, then removes the table. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.resync);
    await this.running;
    for (const w of this.waiters.splice(0)) w.reject(new Error('proxier is stopped'));
    await this.nft(deleteScript(tableName(this.options)));
    this.lastText = undefined;
    this.options.log.info('service rules removed');
  }

  private schedule(delay?: number): void {
    if (!this.started || this.stopped || this.timer || this.running) return;
    const wait =
      delay ?? Math.max(0, Math.ceil(this.lastStart + this.minInterval - performance.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.sync().then((ok) => {
        this.running = undefined;
        if (this.dirtySince !== undefined) this.schedule(ok ? undefined : RETRY_MS);
      });
    }, wait);
  }

  /** One sync; on failure the changes it covered stay pending. Never rejects. */
  private async sync(): Promise<boolean> {
    const start = performance.now();
    this.lastStart = start;
    const since = this.dirtySince;
    const forced = this.force;
    this.dirtySince = undefined;
    this.force = false;
    const record = await this.apply(forced);
    const end = performance.now();
    record.startedAt = start;
    record.durationMs = end - start;
    if (since !== undefined) record.latencyMs = end - since;
    this.account(record, start);

    if (!record.ok) {
      this.dirtySince ??= since ?? start;
      this.force ||= forced;
    }
    return record.ok;
  }

  private async apply(forced: boolean): Promise<SyncRecord> {
    const record: SyncRecord = {
      ok: false,
      startedAt: 0,
      applied: false,
      durationMs: 0,
      routed: 0,
      rejecting: 0,
    };
    try {
      const { source } = this.options;
      const rules = buildRuleset(
        source.services(),
        source.endpointSlices(),
        this.options,
        source.hostPorts?.() ?? [],
      );
      record.routed = rules.routed;
      record.rejecting = rules.rejecting;
      for (const s of rules.skipped) this.options.log.warn(s, 'service not routed');
      if (forced || rules.text !== this.lastText) {
        this.lastText = undefined;
        await this.nft(replaceScript(rules.text, tableName(this.options)));
        this.lastText = rules.text;
        record.applied = true;
      }
      record.ok = true;
    } catch (err) {
      record.error = err instanceof Error ? err.message : String(err);
    }
    return record;
  }

  private account(record: SyncRecord, start: number): void {
    this.counters.syncs++;
    if (!record.ok) this.counters.failures++;
    this.counters.last = record;
    if (record.latencyMs !== undefined) {
      this.counters.maxLatencyMs = Math.max(this.counters.maxLatencyMs, record.latencyMs);
    }
    const log = this.options.log;
    if (!record.ok) log.error(record, 'service rules sync failed; retrying in 1s');
    else if (record.applied) log.debug(record, 'service rules applied');
    if ((record.latencyMs ?? 0) > 1000) log.warn(record, 'service rules applied late');
    this.options.onSync?.(record);
    if (!record.ok) return;
    const done = this.waiters.filter((w) => w.since <= start);
    this.waiters = this.waiters.filter((w) => w.since > start);
    for (const w of done) w.resolve();
  }
}
