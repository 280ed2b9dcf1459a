import { InformerFactory } from '../client/factory.js';
import type { KubeClient } from '../client/rest.js';
import { ControllerManager } from '../controllers/manager.js';
import { Scheduler } from '../scheduler/scheduler.js';

/**
 * The control loops of a control plane, the scheduler and every controller, started as
 * clients of an API server on one shared informer factory. `flyces server` runs them;
 * `flyces up` still starts them itself (the same steps), to be moved here once the
 * changes being made to it in parallel have landed.
 */
export interface ControlLoops {
  /** Stops the controllers and the scheduler and waits for their workers to end. */
  stop(): Promise<void>;
}

/** Starts the scheduler and the controllers; resolves once the controllers' caches synced. */
export async function startControlLoops(client: KubeClient): Promise<ControlLoops> {
  const informers = new InformerFactory(client);
  const scheduler = new Scheduler(client, informers);
  scheduler.register();
  const controllers = new ControllerManager(client, { informers });
  await controllers.start();
  const schedulerDone = scheduler.run();
  return {
    async stop() {
      await controllers.stop();
      scheduler.stop();
      await schedulerDone;
      informers.stop();
    },
  };
}
