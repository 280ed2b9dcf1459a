import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';

import { ApiError, badRequest } from '../api/errors.js';
import type { Logger } from '../log.js';
import type { ExecExit, ExecSession, ExecStreamOptions } from '../runtime/runtime.js';
import { rejectUpgrade } from '../util/upgrade.js';

/**
 * The agent's side of `kubectl exec`: Kubernetes' remote command protocol over WebSocket.
 * Every message starts with a byte naming its stream (0 stdin, 1 stdout, 2 stderr, 3 the
 * final Status, 4 terminal resize; 255 "close stream" since v5, which is how a client ends
 * the command's stdin). The base64 subprotocol sends the stream as an ASCII digit and the
 * data base64-encoded in text messages, for clients that cannot send binary ones.
 */

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;
const CLOSE = 255;

/** Subprotocols served, most preferred first. */
const PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'base64.channel.k8s.io'];

/** Output buffered towards the client above which the command's output is paused. */
const HIGH_WATER = 1 << 20;
const FIRST_SIZE_WAIT_MS = 1_000;

/** What a client asked to run, from the exec query (PodExecOptions). */
export interface ExecRequest extends ExecStreamOptions {
  command: string[];
  stdout: boolean;
  stderr: boolean;
}

/** Reads and checks the exec query, with Kubernetes' wording for what it refuses. */
export function parseExecQuery(query: URLSearchParams): ExecRequest {
  const flag = (key: string) => ['true', '1'].includes(query.get(key) ?? '');
  const req = {
    command: query.getAll('command'),
    stdin: flag('stdin'),
    stdout: flag('stdout'),
    stderr: flag('stderr'),
    tty: flag('tty'),
  };
  if (req.command.length === 0) throw badRequest('you must specify at least 1 command');
  if (!req.stdin && !req.stdout && !req.stderr) {
    throw badRequest('you must specify at least 1 of stdin, stdout, stderr');
  }
  if (req.tty && req.stderr) throw badRequest('stderr cannot be true when tty is true');
  return req;
}

/** Starts the command once the connection is upgraded; errors become the final Status. */
export type ExecStarter = (req: ExecRequest) => Promise<ExecSession>;

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

/**
 * Upgrades an exec request to WebSocket and runs the command over it. `start` is called
 * after the upgrade; checks that should answer with an HTTP error belong before this call.
 * The command is killed when the client goes away.
 */
export function serveExec(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  exec: ExecRequest,
  start: ExecStarter,
  log: Logger,
  kind: 'exec' | 'attach' = 'exec',
): void {
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
    const message = `${kind} is served over WebSocket only, not SPDY; use kubectl 1.30 or later`;
    rejectUpgrade(socket, badRequest(message));
    return;
  }
  const protocol = chooseProtocol(req.headers['sec-websocket-protocol']);
  if (!protocol) {
    const offered = req.headers['sec-websocket-protocol'] ?? 'none';
    rejectUpgrade(socket, badRequest(`no supported ${kind} subprotocol in ${offered}`));
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    void new ExecChannels(ws, protocol).run(exec, start, log);
  });
}

function chooseProtocol(header: string | undefined): string | undefined {
  const offered = (header ?? '').split(',').map((p) => p.trim());
  return PROTOCOLS.find((p) => offered.includes(p));
}

/** One exec connection: frames the command's streams onto the WebSocket and back. */
class ExecChannels {
  private session?: ExecSession;
  /** Messages that arrived while the command was starting (kubectl sends stdin at once). */
  private early: [RawData, boolean][] = [];
  private readonly base64: boolean;
  private readonly canClose: boolean;

  constructor(
    private readonly ws: WebSocket,
    protocol: string,
  ) {
    this.base64 = protocol.startsWith('base64');
    this.canClose = protocol === 'v5.channel.k8s.io';
  }

  async run(exec: ExecRequest, start: ExecStarter, log: Logger): Promise<void> {
    let gone = false;
    this.ws.on('close', () => {
      gone = true;
      this.session?.kill();
    });
    this.ws.on('error', () => this.session?.kill());
    this.ws.on('message', (data, isBinary) => {
      if (this.session) this.receive(data, isBinary);
      else this.early.push([data, isBinary]);
    });
    try {
      const size = exec.tty ? await this.firstSize() : undefined;
      this.session = await start({ ...exec, size });
    } catch (err) {
      this.finish({ exitCode: -1, startError: (err as Error).message });
      return;
    }
    if (gone) this.session.kill();
    for (const [data, isBinary] of this.early) this.receive(data, isBinary);
    this.early = [];
    if (exec.stdout) this.forward(this.session.stdout, STDOUT);
    else this.session.stdout.resume();
    if (exec.stderr) this.forward(this.session.stderr, STDERR);
    else this.session.stderr.resume();
    const exit = await this.session.exited;
    log.debug({ command: exec.command[0], exitCode: exit.exitCode }, 'exec ended');
    this.finish(exit, exec.command);
  }

  /**
   * The terminal size the client sends first thing (kubectl does), waited for briefly so
   * that the command starts on a terminal of the right size.
   */
  private async firstSize(): Promise<{ cols: number; rows: number } | undefined> {
    const deadline = Date.now() + FIRST_SIZE_WAIT_MS;
    while (Date.now() < deadline && this.ws.readyState === this.ws.OPEN) {
      for (const [data, isBinary] of this.early) {
        const [channel, payload] = this.decode(data, isBinary);
        const size = channel === RESIZE ? parseSize(payload) : undefined;
        if (size) return { cols: size.Width, rows: size.Height };
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return undefined;
  }

  /** Copies one output stream to its channel, pausing it while the client is behind. */
  private forward(stream: NodeJS.ReadableStream, channel: number): void {
    stream.on('data', (chunk: Buffer) => {
      this.send(channel, chunk, () => {
        if (stream.isPaused() && this.ws.bufferedAmount < HIGH_WATER) stream.resume();
      });
      if (this.ws.bufferedAmount >= HIGH_WATER) stream.pause();
    });
  }

  private receive(data: RawData, isBinary: boolean): void {
    const [channel, payload] = this.decode(data, isBinary);
    if (channel >= 0) this.dispatch(channel, payload);
  }

  /** A message's stream and data; stream -1 for an empty message. */
  private decode(data: RawData, isBinary: boolean): [number, Buffer] {
    const message = toBuffer(data);
    if (message.length === 0) return [-1, message];
    if (this.base64 && !isBinary) {
      const payload = Buffer.from(message.subarray(1).toString('latin1'), 'base64');
      return [message[0] - 0x30, payload];
    }
    return [message[0], message.subarray(1)];
  }

  private dispatch(channel: number, payload: Buffer): void {
    const session = this.session!;
    if (channel === STDIN && session.stdin && payload.length > 0) {
      if (!session.stdin.write(payload)) {
        this.ws.pause();
        session.stdin.once('drain', () => this.ws.resume());
      }
    } else if (channel === CLOSE && this.canClose && payload[0] === STDIN) {
      session.stdin?.end();
    } else if (channel === RESIZE) {
      const size = parseSize(payload);
      if (size) session.resize(size.Width, size.Height);
    }
  }

  private send(channel: number, data: Buffer, done?: () => void): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    const frame = this.base64
      ? String(channel) + data.toString('base64')
      : Buffer.concat([Buffer.from([channel]), data]);
    this.ws.send(frame, { binary: !this.base64 }, done);
  }

  /** Sends the final Status on the error stream and closes the connection. */
  private finish(exit: ExecExit, command: string[] = []): void {
    this.send(ERROR, Buffer.from(JSON.stringify(exitStatus(exit, command))));
    this.ws.close(1000);
  }
}

/** The Status a client reads the command's outcome from (how kubectl learns the code). */
export function exitStatus(exit: ExecExit, command: string[]): object {
  if (exit.exitCode === 0) return { metadata: {}, status: 'Success' };
  if (exit.exitCode < 0) {
    const message = exit.startError ?? 'the command could not be run';
    return { metadata: {}, status: 'Failure', message, reason: 'InternalError', code: 500 };
  }
  const code = String(exit.exitCode);
  return {
    metadata: {},
    status: 'Failure',
    message:
      'command terminated with non-zero exit code: error executing command ' +
      `[${command.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: code }] },
  };
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function parseSize(payload: Buffer): { Width: number; Height: number } | undefined {
  try {
    const size = JSON.parse(payload.toString('utf8')) as { Width?: unknown; Height?: unknown };
    const valid = (n: unknown): n is number => Number.isInteger(n) && (n as number) < 65536;
    if (!valid(size.Width) || !valid(size.Height) || size.Width < 0 || size.Height < 0) {
      return undefined;
    }
    return { Width: size.Width, Height: size.Height };
  } catch {
    return undefined;
  }
}

/** An exec the agent refuses before upgrading: answered with the error's Status. */
export function refuseExec(socket: Duplex, err: unknown): void {
  const apiErr =
    err instanceof ApiError ? err : new ApiError('InternalError', (err as Error).message);
  rejectUpgrade(socket, apiErr);
}
