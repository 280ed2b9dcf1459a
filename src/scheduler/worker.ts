import { parentPort, workerData } from 'node:worker_threads';
import { InformerFactory } from '../client/factory.js';
import { LeaderElector } from '../client/leader-election.js';
import { KubeClient } from '../client/rest.js';
import { componentLogger } from '../log.js';
import { runWhileLeading } from './leader.js';
import type { FromWorker, SchedulerWorkerData, ToWorker } from './runner.js';
import { Scheduler } from './scheduler.js';

/**
 * The body of the scheduler's worker thread (see runner.ts): a client of its own, the
 * scheduler's informers, and the scheduler run while it holds its lease. It tells the
 * parent when its caches synced, when it leads and when it lost the lease, and stops when
 * asked, releasing the lease after the binds in flight have landed. An exception nobody
 * catches ends the thread; the parent sees that and decides.
 */

const data = workerData as SchedulerWorkerData;
const port = parentPort!;
const log = componentLogger('scheduler', { thread: 'worker' });
const tell = (message: FromWorker) => port.postMessage(message);

const client = new KubeClient(data.client);
const informers = new InformerFactory(client);
const scheduler = new Scheduler(client, informers);
scheduler.register();
// The lease has a client (connection pool) of its own, as in Kubernetes: its renewals must
// never wait behind a burst of binds, or a busy scheduler would lose its lease.
const leaseClient = new KubeClient(data.client);
const elector = new LeaderElector({ ...data.lease, client: leaseClient });

/** Set once the parent asked to stop: resolves after the lease has been released. */
let stopped: Promise<void> | undefined;
port.on('message', (message: ToWorker) => {
  if (message.type === 'stop') stopped ??= elector.stop();
});

await informers.start();
tell({ type: 'synced' });
log.debug('caches synced; campaigning for the lease');
await runWhileLeading(
  scheduler,
  elector,
  () => tell({ type: 'lost' }),
  () => tell({ type: 'leading' }),
);
// Leading ends before stop() has released the lease; the client must outlive that.
await stopped;
informers.stop();
client.close();
leaseClient.close();
tell({ type: 'stopped' });
port.close();
