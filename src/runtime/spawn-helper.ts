import { startConmonHere, type ConmonJob } from './conmon.js';
import { ExecError, runCaptureHere, type CaptureJob } from './exec.js';
import type { JobKind, JobReply } from './spawner.js';

/**
 * The spawn helper process (see spawner.ts): runs the jobs its parent sends, each as it
 * arrives, and ends when its parent goes away.
 */

const jobs: Record<JobKind, (input: never) => Promise<unknown>> = {
  // A program that cannot be started is an answer (ExecError), not a failed job.
  capture: (input: CaptureJob) =>
    runCaptureHere(input).catch((err: unknown) => {
      if (err instanceof ExecError) return { startError: err.stderr };
      throw err;
    }),
  conmon: (input: ConmonJob) => startConmonHere(input),
};

process.on('message', (msg: { id: number; kind: JobKind; input: never }) => {
  const reply = (r: Omit<JobReply, 'id'>) => process.send?.({ id: msg.id, ...r });
  jobs[msg.kind](msg.input).then(
    (result) => reply({ result }),
    (err: unknown) => reply({ error: (err as Error).message ?? String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
// Ctrl-C in a terminal signals the whole process group; the parent may still need the
// helper while it shuts down, and the helper ends with it anyway.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
