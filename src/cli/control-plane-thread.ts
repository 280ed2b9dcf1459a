import { Worker } from 'node:worker_threads';
import type { ClientConfig } from '../client/rest.js';
import { componentLogger } from '../log.js';
import type { ControlLoopOptions, ControlLoops } from './control-plane.js';

/**
 * The control loops (scheduler and controllers, see control-plane.ts) on a thread of their
 * own. They are clients of the API server like any other, so they need nothing of this
 * thread but the way to reach it: each side gets a core, and the API server's thread no
 * longer parses the watch streams, runs the reconcilers and scores nodes between requests.
 *
 * The thread talks to this one through messages:
 *   to the thread:   { type: 'stop' }
 *   from the thread: { type: 'ready' } once the scheduler's caches synced,
 *                    { type: 'lost', lease } when a held lease was lost,
 *                    { type: 'stopped' } after stop() finished there.
 * If the thread dies of an error, or exits without being asked to, the loops are gone:
 * that is logged and reported through `onLost` as the loss of both leases, so the process
 * stops as it would for a lost lease (its supervisor restarts it) instead of running on
 * without a scheduler.
 */
export type ThreadOptions = Omit<ControlLoopOptions, 'onLost'> & {
  onLost?: (lease: string) => void;
};

export interface ThreadData {
  client: ClientConfig;
  options: Omit<ControlLoopOptions, 'onLost'>;
}

export type FromThread =
  | { type: 'ready' }
  | { type: 'lost'; lease: string }
  | { type: 'stopped' }
  | { type: 'failed'; message: string };

const log = componentLogger('control-plane');

export function startControlLoopsThread(
  client: ClientConfig,
  opts: ThreadOptions = {},
): Promise<ControlLoops> {
  const { onLost = () => undefined, ...options } = opts;
  const data: ThreadData = { client, options };
  const worker = new Worker(new URL('./control-plane-worker.js', import.meta.url), {
    workerData: data,
    // The loops log through the process's logger straight to fd 2; nothing else is read.
    stdout: false,
    stderr: false,
  });
  let stopping = false;
  let ready = false;
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const stopped = new Promise<void>((resolve) => {
    worker.on('message', (msg: FromThread) => {
      if (msg.type === 'lost') onLost(msg.lease);
      if (msg.type === 'stopped') resolve();
    });
  });

  return new Promise<ControlLoops>((resolve, reject) => {
    const gone = (why: string) => {
      if (stopping) return;
      if (!ready) {
        stopping = true;
        void worker.terminate();
        reject(new Error(`the control loops' thread failed to start: ${why}`));
        return;
      }
      log.error({ why }, "the control loops' thread ended; scheduler and controllers are gone");
      onLost('kube-scheduler');
      onLost('kube-controller-manager');
    };
    worker.on('error', (err) => gone(err.stack ?? err.message));
    worker.on('message', (msg: FromThread) => {
      if (msg.type === 'failed') gone(msg.message);
      if (msg.type !== 'ready') return;
      ready = true;
      resolve({
        async stop() {
          if (stopping) return;
          stopping = true;
          worker.postMessage({ type: 'stop' });
          // A thread that already died has nothing left to stop.
          await Promise.race([stopped, exited]);
          await worker.terminate();
        },
      });
    });
    void exited.then((code) => gone(`exit code ${code}`));
  });
}
