import { PassThrough, Writable } from 'node:stream';

import { badRequest } from '../api/errors.js';
import type { AttachedStdin, ExecExit, ExecSession } from '../runtime/runtime.js';
import type { ExecRequest } from './exec.js';
import { followFromEnd, roomIn } from './logs.js';

/**
 * The agent's side of `kubectl attach`: a session that looks like an exec's (see exec.ts,
 * whose WebSocket channels carry it) on the container's main process. Its output is the
 * container's log from now on, entry by entry as conmon writes it, stderr apart unless the
 * container has a terminal; its stdin, when asked for, is the runtime's attachment to the
 * stdin conmon holds open; a resize goes to the container's terminal. The session ends when
 * the container does (the client then gets a Success Status) or when the client leaves,
 * which leaves the container running, as kubelet's attach does.
 */

/** Reads and checks the attach query (PodAttachOptions), with Kubernetes' wording. */
export function parseAttachQuery(query: URLSearchParams): ExecRequest {
  const flag = (key: string) => ['true', '1'].includes(query.get(key) ?? '');
  const req = {
    command: [],
    stdin: flag('stdin'),
    stdout: flag('stdout'),
    stderr: flag('stderr'),
    tty: flag('tty'),
  };
  if (!req.stdin && !req.stdout && !req.stderr) {
    throw badRequest('you must specify at least 1 of stdin, stdout, stderr');
  }
  if (req.tty && req.stderr) throw badRequest('stderr cannot be true when tty is true');
  return req;
}

export interface AttachTarget {
  /** The container's log (CRI format, as conmon writes it). */
  logPath: string;
  /** Whether the container still runs; the session ends once it does not. */
  running: () => Promise<boolean>;
  /** Attaches to its stdin; asked for only when the request has stdin. */
  stdin?: () => Promise<AttachedStdin>;
  resize?: (cols: number, rows: number) => void;
}

/** Starts an attach session on `target` as `req` asks. */
export async function startAttach(
  target: AttachTarget,
  req: ExecRequest & { size?: { cols: number; rows: number } },
): Promise<ExecSession> {
  if (req.stdin && !target.stdin) throw new Error("this node's runtime cannot attach to a stdin");
  const attached = req.stdin ? await target.stdin!() : undefined;
  if (req.size) target.resize?.(req.size.cols, req.size.rows);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  // Closed by kill(): the follower then stops at its next look at the log.
  const stop = new Writable({ write: (_chunk, _encoding, done) => done() });
  const exited: Promise<ExecExit> = followFromEnd(
    target.logPath,
    (entry) => {
      (entry.stream === 'stderr' && !req.tty ? stderr : stdout).write(entry.text);
      return true;
    },
    stop,
    async () => !(await target.running()),
    async () => {
      await roomIn(stdout);
      await roomIn(stderr);
    },
  )
    .then(
      () => ({ exitCode: 0 }),
      (err: unknown) => ({ exitCode: -1, startError: (err as Error).message }),
    )
    .finally(() => {
      attached?.close();
      stdout.end();
      stderr.end();
    });
  return {
    stdin: attached?.stream,
    stdout,
    stderr,
    exited,
    resize: (cols, rows) => target.resize?.(cols, rows),
    kill: () => stop.destroy(),
  };
}
