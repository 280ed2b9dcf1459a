import { parentPort, workerData } from 'node:worker_threads';
import { KubeClient } from '../client/rest.js';
import { startControlLoops } from './control-plane.js';
import type { FromThread, ThreadData } from './control-plane-thread.js';
import { startHeapLog } from './memory.js';

/**
 * The thread started by control-plane-thread.ts: runs the control loops until told to stop,
 * then tells the parent, which ends the thread. An uncaught error ends the thread; the parent
 * sees the exit and starts another.
 */

const port = parentPort!;
const { client: config, options } = workerData as ThreadData;
const post = (msg: FromThread) => port.postMessage(msg);
const client = new KubeClient(config);
startHeapLog('control-loops');

try {
  const loops = await startControlLoops(client, {
    ...options,
    onLost: (lease) => post({ type: 'lost', lease }),
  });
  port.on('message', (msg: { type: string }) => {
    if (msg.type !== 'stop') return;
    void loops
      .stop()
      .finally(() => client.close())
      .then(() => post({ type: 'stopped' }));
  });
  post({ type: 'ready' });
} catch (err) {
  client.close();
  post({ type: 'failed', message: (err as Error).stack ?? String(err) });
}
