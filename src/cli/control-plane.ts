import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { InformerFactory } from '../client/factory.js';
import { LeaderElector, type LeaderElectionOptions } from '../client/leader-election.js';
import { KubeClient } from '../client/rest.js';
import { ControllerManager } from '../controllers/manager.js';
import { componentLogger } from '../log.js';
import { runWhileLeading } from '../scheduler/leader.js';
import { Scheduler } from '../scheduler/scheduler.js';

/**
 * The control loops of a control plane, the scheduler and every controller, started as
 * clients of an API server on one shared informer factory. `flyces up` and `flyces server`
 * run them on a thread of their own (control-plane-thread.ts).
 *
 * Each of the two runs only while it holds its Lease in kube-system (`kube-scheduler`,
 * `kube-controller-manager`), so of several servers exactly one schedules and one runs the
 * controllers; the others stand by with warm caches and take a lease over once its holder
 * stopped renewing it. A component that loses its lease does not try to lead again (its
 * view may be stale): the process is told through `onLost` and should exit, as Kubernetes'
 * components do, to be restarted by its supervisor.
 */
export interface ControlLoops {
  /** Stops the controllers and the scheduler, releases held leases, and waits for both. */
  stop(): Promise<void>;
}

export interface ControlLoopOptions {
  /** The cluster's pod range, cut into one range per node by the node-ipam controller. */
  clusterCidr?: string;
  /** This candidate's identity in the leases; default `hostname_uuid`. */
  identity?: string;
  /** Lease timing (tests shorten it); Kubernetes' defaults otherwise (15 s, 10 s, 2 s). */
  lease?: Pick<LeaderElectionOptions, 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'>;
  /** Told once when a lease this process held was lost (not given up by stop()). */
  onLost?: (lease: string) => void;
  /** Run the controllers too (default); false runs the scheduler alone (its benchmark). */
  controllers?: boolean;
}

const log = componentLogger('control-plane');

/** Starts campaigning for both leases; resolves once the scheduler's caches synced. */
export async function startControlLoops(
  client: KubeClient,
  opts: ControlLoopOptions = {},
): Promise<ControlLoops> {
  const identity = opts.identity ?? `${hostname()}_${randomUUID()}`;
  // The leases renew over connections of their own: behind a burst of the controllers'
  // requests queued for the shared pool, a renewal would miss its deadline and the leader
  // would step down for being busy (Kubernetes' components also elect on a client apart).
  const leaseClient = new KubeClient({
    ...client.config,
    userAgent: `${client.config.userAgent ?? 'flyces'}/leader-election`,
  });
  const elector = (name: string) =>
    new LeaderElector({ client: leaseClient, name, identity, ...opts.lease });
  const onLost = opts.onLost ?? (() => undefined);

  const informers = new InformerFactory(client);
  // Made first: a bad option (say the cluster CIDR) fails here, before anything runs.
  const controllers =
    opts.controllers === false
      ? undefined
      : new ControllerManager(client, {
          informers,
          nodeIpam: opts.clusterCidr ? { clusterCidr: opts.clusterCidr } : undefined,
        });
  const scheduler = new Scheduler(client, informers);
  scheduler.register();
  await informers.start();
  const schedulerLease = elector('kube-scheduler');
  const schedulerDone = runWhileLeading(scheduler, schedulerLease, () => onLost('kube-scheduler'));

  const managerLease = controllers && elector('kube-controller-manager');
  const managerDone = managerLease?.run({
    onStartedLeading: async () => {
      log.info({ identity }, 'leading: running the controllers');
      await controllers!.start();
    },
    onStoppedLeading: async (why) => {
      await controllers!.stop();
      if (why === 'lost') onLost('kube-controller-manager');
    },
  });
  log.info({ identity, controllers: !!controllers }, 'campaigning for the leases');

  return {
    async stop() {
      await Promise.all([managerLease?.stop(), schedulerLease.stop()]);
      await Promise.all([managerDone, schedulerDone]);
      informers.stop();
      leaseClient.close();
    },
  };
}
