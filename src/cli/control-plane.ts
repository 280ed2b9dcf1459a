import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { InformerFactory } from '../client/factory.js';
import { LeaderElector, type LeaderElectionOptions } from '../client/leader-election.js';
import type { KubeClient } from '../client/rest.js';
import { ControllerManager } from '../controllers/manager.js';
import { componentLogger } from '../log.js';
import { SchedulerWorker } from '../scheduler/runner.js';

/**
 * The control loops of a control plane, the scheduler and every controller, started as
 * clients of an API server: the controllers on one shared informer factory, the scheduler
 * in a worker thread with informers of its own (scheduler/runner.ts). `flyces server` runs
 * them; `flyces up` still starts them itself (the same steps), to be moved here once the
 * changes being made to it in parallel have landed.
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
}

const log = componentLogger('control-plane');

/** Starts campaigning for both leases; resolves once the scheduler's caches synced. */
export async function startControlLoops(
  client: KubeClient,
  opts: ControlLoopOptions = {},
): Promise<ControlLoops> {
  const identity = opts.identity ?? `${hostname()}_${randomUUID()}`;
  const elector = (name: string) => new LeaderElector({ client, name, identity, ...opts.lease });
  const onLost = opts.onLost ?? (() => undefined);

  const scheduler = new SchedulerWorker({
    client: client.config,
    lease: { name: 'kube-scheduler', identity, ...opts.lease },
    onLost: () => onLost('kube-scheduler'),
  });
  await scheduler.start();

  const informers = new InformerFactory(client);

  const controllers = new ControllerManager(client, {
    informers,
    nodeIpam: opts.clusterCidr ? { clusterCidr: opts.clusterCidr } : undefined,
  });
  const managerLease = elector('kube-controller-manager');
  const managerDone = managerLease.run({
    onStartedLeading: async () => {
      log.info({ identity }, 'leading: running the controllers');
      await controllers.start();
    },
    onStoppedLeading: async (why) => {
      await controllers.stop();
      if (why === 'lost') onLost('kube-controller-manager');
    },
  });
  log.info({ identity }, 'campaigning for kube-scheduler and kube-controller-manager');

  return {
    async stop() {
      await Promise.all([managerLease.stop(), scheduler.stop()]);
      await managerDone;
      informers.stop();
    },
  };
}
