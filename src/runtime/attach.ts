import { spawn } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';

import { DEFAULT_PATH } from './exec.js';
import type { AttachedStdin } from './runtime.js';

/**
 * The runtime's side of `kubectl attach`: conmon's attach socket and control FIFO of a
 * container, found in its bundle directory. The container's output is not taken from the
 * socket but from its log (the agent follows it): every byte conmon relays is there, in
 * order and tagged by stream.
 *
 * conmon's attach socket is a Unix socket of type SOCK_SEQPACKET, which Node cannot open;
 * `socat` (Debian's socat) opens it and copies our pipe into it. What conmon reads there
 * goes to the container's stdin; when the pipe ends, socat ends its half of the socket,
 * and conmon closes the container's stdin if the container has stdinOnce (conmon was not
 * given --leave-stdin-open). What conmon writes back (the output, framed) is thrown away.
 */

/** How long socat waits for conmon's side once ours has ended (socat's -t). */
const HALF_CLOSE_SECONDS = 1;
/** When socat is killed after close() if it has not ended by itself. */
const SOCAT_KILL_MS = 5_000;

/**
 * Connects to the attach socket in `bundleDir` (conmon started with --stdin). Resolves once
 * socat runs; fails with a clear message when socat is missing or there is no socket.
 */
export async function attachStdin(bundleDir: string): Promise<AttachedStdin> {
  if (!existsSync(path.join(bundleDir, 'attach'))) {
    throw new Error('the container has no attach socket (its monitor was started without stdin)');
  }
  // A relative path: the socket's full path may pass the 108 bytes a socket address holds.
  const child = spawn(
    'socat',
    ['-t', String(HALF_CLOSE_SECONDS), '-', 'UNIX-CONNECT:attach,type=5'],
    { cwd: bundleDir, stdio: ['pipe', 'ignore', 'ignore'], env: { PATH: DEFAULT_PATH } },
  );
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? new Error(
              "attaching to a container's stdin needs socat on the node: apt-get install socat",
            )
          : err,
      ),
    );
  });
  // Writes after socat ended (the container exited) are dropped, not thrown.
  child.stdin!.on('error', () => undefined);
  return {
    stream: child.stdin!,
    close: () => {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), SOCAT_KILL_MS);
      timer.unref();
      child.once('exit', () => clearTimeout(timer));
    },
  };
}

/**
 * Sets the size of the terminal of the container whose bundle is `bundleDir` (conmon
 * started with --terminal), through conmon's control FIFO: message 1 is a resize. Not
 * waited for: a FIFO nobody reads (conmon gone) is not opened, and nothing is written.
 */
export function resizeTerminal(bundleDir: string, cols: number, rows: number): void {
  let fd: number;
  try {
    fd = openSync(path.join(bundleDir, 'ctl'), constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return;
  }
  try {
    writeSync(fd, `1 ${rows} ${cols}\n`);
  } catch {
    // A full FIFO means conmon is not reading it; the size is not worth waiting for.
  } finally {
    closeSync(fd);
  }
}
