import type { LeaderElector } from '../client/leader-election.js';
import { componentLogger } from '../log.js';
import type { Scheduler } from './scheduler.js';

/**
 * Runs a scheduler only while `elector` holds the lease. On becoming leader the scheduler
 * first re-reads the bound pods (its predecessor's last binds) and then schedules. When
 * leading ends the scheduler stops for good, as Kubernetes' scheduler exits: its assumed
 * pods may no longer be true. `onLost` is told when that happened without a stop() of the
 * elector, so the process can shut down or restart; `onLeading` when scheduling begins.
 * Resolves once the scheduler stopped (or, if it never led, once the elector stopped).
 */
export async function runWhileLeading(
  scheduler: Scheduler,
  elector: LeaderElector,
  onLost: () => void = () => undefined,
  onLeading: () => void = () => undefined,
): Promise<void> {
  const log = componentLogger('scheduler');
  let running: Promise<void> | undefined;
  let stopping = false;
  await elector.run({
    onStartedLeading: async () => {
      await scheduler.syncBoundPods();
      if (stopping) return;
      log.info('leading: scheduling pods');
      running = scheduler.run();
      onLeading();
    },
    onStoppedLeading: async (why) => {
      stopping = true;
      scheduler.stop();
      await running;
      if (why === 'lost') onLost();
    },
  });
  await running;
}
