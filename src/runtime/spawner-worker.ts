import { parentPort } from 'node:worker_threads';

import { startConmonHere, type ConmonJob } from './conmon.js';
import { ExecError, runCaptureHere, type CaptureJob } from './exec.js';
import type { JobKind, JobReply } from './spawner.js';

/** The spawner's worker thread: runs the jobs spawner.ts sends, each as it arrives. */

const jobs: Record<JobKind, (input: never) => Promise<unknown>> = {
  // A program that cannot be started is an answer (ExecError), not a failed job.
  capture: (input: CaptureJob) =>
    runCaptureHere(input).catch((err: unknown) => {
      if (err instanceof ExecError) return { startError: err.stderr };
      throw err;
    }),
  conmon: (input: ConmonJob) => startConmonHere(input),
};

parentPort!.on('message', (msg: { id: number; kind: JobKind; input: never }) => {
  const reply = (r: Omit<JobReply, 'id'>) => parentPort!.postMessage({ id: msg.id, ...r });
  jobs[msg.kind](msg.input).then(
    (result) => reply({ result }),
    (err: unknown) => reply({ error: (err as Error).message ?? String(err) }),
  );
});
