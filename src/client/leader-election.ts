import { byGroupResource } from '../api/resources.js';
import type { KObject } from '../api/types.js';
import { componentLogger, type Logger } from '../log.js';
import { isReason, type KubeClient } from './rest.js';

/**
 * Leader election on a coordination.k8s.io/v1 Lease, so that of several replicas of a
 * component (scheduler, controller manager) exactly one acts at a time.
 *
 * A candidate takes the lease when it is free (no holder) or when its holder has not
 * renewed it for the lease duration. The duration is measured on the candidate's own clock
 * from the moment it last saw the lease change, never by comparing its clock with the
 * holder's timestamps, so clock skew between machines does not matter. The leader renews
 * every retry period; if no renewal succeeds within the renew deadline it stops leading
 * (and should stop acting: another candidate may take over once the lease duration has
 * passed). Writes carry the lease's resourceVersion, so two candidates racing for the
 * same lease cannot both win. stop() releases a held lease, so a standby takes over at
 * once instead of after the lease duration.
 */

export interface LeaderElectionOptions {
  client: KubeClient;
  /** Lease name, e.g. "kube-scheduler". */
  name: string;
  /** Lease namespace; kube-system by default. */
  namespace?: string;
  /** This candidate's unique identity, e.g. `${hostname}_${uuid}`. */
  identity: string;
  /** How long a lease stays valid without renewal. Default 15 s. */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it gives up. Default 10 s. */
  renewDeadlineMs?: number;
  /** The interval between attempts to acquire or renew. Default 2 s. */
  retryPeriodMs?: number;
}

export interface LeaderCallbacks {
  /** Called once when this candidate becomes leader; may be async, run() does not wait. */
  onStartedLeading(): void | Promise<void>;
  /**
   * Called once when leading ends: renewal failed ('lost') or stop(). Act no further. A
   * returned promise is awaited before stop() releases the lease, so work in flight (binds)
   * lands before a standby takes over.
   */
  onStoppedLeading(why: 'lost' | 'stopped'): void | Promise<void>;
  /** Called whenever a different holder is observed. */
  onNewLeader?(identity: string): void;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

const leases = () => byGroupResource.get('coordination.k8s.io/leases')!;

/** Kubernetes' MicroTime: RFC 3339 with microseconds. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private readonly log: Logger;
  private readonly namespace: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  /** The lease as last seen, and when (our clock) it was seen to change. */
  private observed?: { spec: LeaseSpec; at: number };
  private leading = false;
  private stopped = false;
  private wake?: () => void;
  private finished?: Promise<void>;

  constructor(private readonly opts: LeaderElectionOptions) {
    this.namespace = opts.namespace ?? 'kube-system';
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseDurationMs) {
      throw new Error('leader election: the renew deadline must be shorter than the lease');
    }
    this.log = componentLogger('leader-election', {
      lease: `${this.namespace}/${opts.name}`,
      identity: opts.identity,
    });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until this candidate leads, then renews until renewal fails or stop() is
   * called. Resolves when leading has ended (or stop() came first). Call once.
   */
  run(callbacks: LeaderCallbacks): Promise<void> {
    this.finished = this.campaign(callbacks);
    return this.finished;
  }

  /**
   * Stops campaigning or leading. With `release` (the default) a held lease is given up so
   * a standby takes over at once; without it the lease simply expires (as after a crash).
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.finished;
    if (opts.release !== false && this.observed?.spec.holderIdentity === this.opts.identity) {
      await this.release();
    }
  }

  private async campaign(callbacks: LeaderCallbacks): Promise<void> {
    while (!this.stopped && !(await this.attempt(callbacks))) await this.sleep(this.retryPeriodMs);
    if (this.stopped) return;
    this.leading = true;
    this.log.info('became leader');
    void Promise.resolve()
      .then(() => callbacks.onStartedLeading())
      .catch((err) => this.log.error({ err }, 'onStartedLeading failed'));
    let renewedAt = Date.now();
    while (!this.stopped) {
      await this.sleep(this.retryPeriodMs);
      if (this.stopped) break;
      // A renewal that hangs must not keep us leading past the deadline.
      const left = this.renewDeadlineMs - (Date.now() - renewedAt);
      const timeout = new Promise<false>((r) => setTimeout(r, Math.max(0, left), false).unref());
      if (await Promise.race([this.attempt(callbacks), timeout])) renewedAt = Date.now();
      else if (Date.now() - renewedAt > this.renewDeadlineMs) {
        this.log.error('could not renew the lease within the deadline; no longer leader');
        break;
      }
    }
    this.leading = false;
    await callbacks.onStoppedLeading(this.stopped ? 'stopped' : 'lost');
  }

  /** One try to acquire or renew; true when this candidate holds the lease afterwards. */
  private async attempt(callbacks: LeaderCallbacks): Promise<boolean> {
    try {
      return await this.tryAcquireOrRenew(callbacks);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not acquire or renew the lease');
      return false;
    }
  }

  private async tryAcquireOrRenew(callbacks: LeaderCallbacks): Promise<boolean> {
    const now = Date.now();
    let lease: KObject;
    try {
      lease = await this.opts.client.get<KObject>(leases(), this.namespace, this.opts.name);
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
      return this.create(now);
    }
    const spec: LeaseSpec = lease.spec ?? {};
    this.observe(spec, now, callbacks);
    const holder = spec.holderIdentity;
    const me = this.opts.identity;
    const durationMs = (spec.leaseDurationSeconds ?? 0) * 1000 || this.leaseDurationMs;
    if (holder && holder !== me && now < this.observed!.at + durationMs) return false;

    const next: LeaseSpec = {
      ...spec,
      holderIdentity: me,
      leaseDurationSeconds: this.durationSeconds(),
      renewTime: microTime(now),
    };
    if (holder !== me) {
      next.acquireTime = microTime(now);
      next.leaseTransitions = (spec.leaseTransitions ?? 0) + 1;
    }
    try {
      await this.opts.client.update(leases(), { ...lease, spec: next });
    } catch (err) {
      if (isReason(err, 'Conflict')) return false;
      throw err;
    }
    this.observed = { spec: next, at: now };
    return true;
  }

  private async create(now: number): Promise<boolean> {
    const spec: LeaseSpec = {
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: this.durationSeconds(),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    try {
      await this.opts.client.create(leases(), {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.opts.name, namespace: this.namespace },
        spec,
      });
    } catch (err) {
      if (isReason(err, 'AlreadyExists')) return false;
      throw err;
    }
    this.observed = { spec, at: now };
    return true;
  }

  /** Remembers when the lease last changed, and tells about a new holder. */
  private observe(spec: LeaseSpec, now: number, callbacks: LeaderCallbacks): void {
    const before = this.observed?.spec;
    if (before?.holderIdentity === spec.holderIdentity && before?.renewTime === spec.renewTime) {
      return;
    }
    this.observed = { spec, at: now };
    const holder = spec.holderIdentity;
    if (holder && holder !== before?.holderIdentity && holder !== this.opts.identity) {
      this.log.info({ leader: holder }, 'new leader observed');
      callbacks.onNewLeader?.(holder);
    }
  }

  private async release(): Promise<void> {
    try {
      const lease = await this.opts.client.get<KObject>(leases(), this.namespace, this.opts.name);
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      const spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 };
      spec.renewTime = microTime(Date.now());
      await this.opts.client.update(leases(), { ...lease, spec });
      this.log.info('released the lease');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not release the lease');
    }
  }

  private durationSeconds(): number {
    return Math.max(1, Math.ceil(this.leaseDurationMs / 1000));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
