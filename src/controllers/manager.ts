import { InformerFactory } from '../client/factory.js';
import type { KubeClient } from '../client/rest.js';
import { componentLogger } from '../log.js';
import type { Controller } from './controller.js';
import { CronJobController } from './cronjob/controller.js';
import { DaemonSetController } from './daemonset/controller.js';
import { DeploymentController } from './deployment/controller.js';
import { EndpointsController } from './endpoints/controller.js';
import { GarbageCollector } from './gc/collector.js';
import { JobController } from './job/controller.js';
import { NamespaceController } from './namespace/controller.js';
import { NodeIpamController, type NodeIpamOptions } from './nodeipam/controller.js';
import { NodeLifecycleController, type NodeLifecycleOptions } from './nodelifecycle/controller.js';
import { ReplicaSetController } from './replicaset/controller.js';
import { ServiceAccountController } from './serviceaccount/controller.js';
import { StatefulSetController } from './statefulset/controller.js';

/** The controllers the manager can run, by name, in the order they start. */
export const ALL_CONTROLLERS = [
  'replicaset',
  'deployment',
  'garbage-collector',
  'namespace',
  'serviceaccount',
  'node-lifecycle',
  'node-ipam',
  'daemonset',
  'statefulset',
  'job',
  'cronjob',
  'endpoints',
] as const;

export type ControllerName = (typeof ALL_CONTROLLERS)[number];

export interface ControllerManagerOptions {
  /**
   * Informers to share with other components of the process. The manager starts the ones
   * its controllers ask for but stops the factory only if it made it itself.
   */
  informers?: InformerFactory;
  /** Which controllers to run (default: all). */
  controllers?: ControllerName[];
  /** Worker loops per controller (defaults: 5, except 2 for namespace, daemonset, statefulset). */
  workers?: Partial<Record<ControllerName, number>>;
  /** Timing of the node lifecycle controller (tests shorten it). */
  nodeLifecycle?: Omit<NodeLifecycleOptions, 'workers'>;
  /** The cluster's pod range and the size of each node's share. */
  nodeIpam?: NodeIpamOptions;
  /** The time for the Job and CronJob controllers, in ms since the epoch (tests move it). */
  clock?: () => number;
  /** Base of the Job controller's delay before replacing failed pods (default 10 s). */
  jobBackoffBaseMs?: number;
}

/**
 * Runs the controllers of flyCes in one process against one API server: builds them on a
 * shared informer factory, lets each register its handlers, starts and syncs the informers,
 * then starts every controller's workers. No worker reconciles before the caches synced.
 */
export class ControllerManager {
  readonly controllers: Controller[];
  private readonly factory: InformerFactory;
  private readonly ownsFactory: boolean;
  private readonly log = componentLogger('controller-manager');
  private running: Promise<void>[] = [];
  private started = false;

  constructor(client: KubeClient, opts: ControllerManagerOptions = {}) {
    this.factory = opts.informers ?? new InformerFactory(client);
    this.ownsFactory = !opts.informers;
    const enabled = new Set(opts.controllers ?? ALL_CONTROLLERS);
    const workers = opts.workers ?? {};
    const make: Record<ControllerName, () => Controller> = {
      replicaset: () =>
        new ReplicaSetController(client, this.factory, { workers: workers.replicaset }),
      deployment: () =>
        new DeploymentController(client, this.factory, { workers: workers.deployment }),
      'garbage-collector': () =>
        new GarbageCollector(client, this.factory, { workers: workers['garbage-collector'] }),
      namespace: () =>
        new NamespaceController(client, this.factory, { workers: workers.namespace }),
      serviceaccount: () =>
        new ServiceAccountController(client, this.factory, { workers: workers.serviceaccount }),
      'node-lifecycle': () =>
        new NodeLifecycleController(client, this.factory, {
          workers: workers['node-lifecycle'],
          ...opts.nodeLifecycle,
        }),
      'node-ipam': () => new NodeIpamController(client, this.factory, opts.nodeIpam),
      daemonset: () =>
        new DaemonSetController(client, this.factory, { workers: workers.daemonset }),
      statefulset: () =>
        new StatefulSetController(client, this.factory, { workers: workers.statefulset }),
      job: () =>
        new JobController(client, this.factory, {
          workers: workers.job,
          clock: opts.clock,
          backoffBaseMs: opts.jobBackoffBaseMs,
        }),
      cronjob: () =>
        new CronJobController(client, this.factory, {
          workers: workers.cronjob,
          clock: opts.clock,
        }),
      endpoints: () =>
        new EndpointsController(client, this.factory, { workers: workers.endpoints }),
    };
    this.controllers = ALL_CONTROLLERS.filter((n) => enabled.has(n)).map((n) => make[n]());
  }

  /** Registers every controller, waits for the informers to sync, and starts the workers. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const controller of this.controllers) controller.register();
    await this.factory.start();
    this.running = this.controllers.map((c) =>
      c.run().catch((err) => this.log.error({ err, controller: c.name }, 'controller failed')),
    );
    this.log.info({ controllers: this.controllers.map((c) => c.name) }, 'controllers started');
  }

  /**
   * Stops every controller and resolves once their workers have finished the reconciles
   * they were in; then stops the informers if the manager created them.
   */
  async stop(): Promise<void> {
    for (const controller of this.controllers) controller.stop();
    await Promise.all(this.running);
    if (this.ownsFactory) this.factory.stop();
    this.log.info('controllers stopped');
  }
}
