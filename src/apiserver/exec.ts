import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';

import { ApiError, badRequest } from '../api/errors.js';
import type { KObject } from '../api/types.js';
import { rejectUpgrade } from '../util/upgrade.js';
import { nodeEndpoint, pickContainer, type NodeDialer } from './node-proxy.js';
import type { Registry } from './registry.js';
import type { ResourceRequest } from './request.js';

/**
 * `kubectl exec` at the API server. The request (`pods/NAME/exec`, an HTTP upgrade to
 * WebSocket) is checked here: the pod exists, is on a node and not finished, and names a
 * container. Then it is proxied the way kube-apiserver proxies to kubelets: the upgrade
 * request is sent on to the agent of the pod's node with the API server's own credential
 * (its token over plain TCP, or its client certificate over TLS; see NodeDialer), and
 * from then on bytes are copied both ways. The agent completes the WebSocket handshake and
 * speaks the exec protocol; the API server never parses a frame, so it costs one copy per
 * byte and any subprotocol the agent serves reaches the client unchanged. A refusal by
 * the agent (container not running, bad query) is its HTTP Status response, also relayed.
 */

/** The options forwarded to the agent; anything else in the query is dropped. */
const FORWARDED = ['stdin', 'stdout', 'stderr', 'tty'];

/** Handshake headers the agent needs to answer the upgrade. */
const UPGRADE_HEADERS = [
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'x-stream-protocol-version',
];

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Serves one exec upgrade request. Errors found before the connection to the agent is
 * made are answered with their Status; afterwards the connection belongs to the proxy
 * and ends when either side closes.
 */
export async function proxyExec(
  registry: Registry,
  dialer: NodeDialer,
  rr: ResourceRequest,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  const pod = await registry.get(rr.rt, rr.namespace, rr.name!);
  const kind = rr.subresource === 'attach' ? 'attach' : 'exec';
  const container = execContainer(pod, rr.query, kind);
  const { host, port, node } = await nodeEndpoint(registry, pod);
  const query = new URLSearchParams();
  const forwarded = kind === 'exec' ? ['command', ...FORWARDED] : FORWARDED;
  for (const [key, value] of rr.query) if (forwarded.includes(key)) query.append(key, value);
  const path = `/${kind}/${pod.metadata.namespace}/${pod.metadata.name}/${container}?${query}`;
  const agent = await connectAgent(host, port, node, dialer);
  agent.write(upgradeRequest(req, path, `${host}:${port}`, dialer.token));
  if (head.length > 0) agent.write(head);
  pipeBothWays(socket, agent);
}

/**
 * The container an exec runs in or an attach reaches; refuses finished pods and unclear
 * container names.
 */
export function execContainer(
  pod: KObject,
  query: URLSearchParams,
  kind: 'exec' | 'attach' = 'exec',
): string {
  const name = pod.metadata.name;
  if (!pod.spec?.nodeName) throw badRequest(`pod ${name} does not have a host assigned`);
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') {
    const what = kind === 'exec' ? 'exec into' : 'attach to';
    throw badRequest(`cannot ${what} a container in a completed pod; current phase is ${phase}`);
  }
  return pickContainer(pod, query, false);
}

function connectAgent(
  host: string,
  port: number,
  node: string,
  dialer: NodeDialer,
): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const tls = dialer.tls;
    const agent = tls
      ? tlsConnect({
          host,
          port,
          timeout: CONNECT_TIMEOUT_MS,
          ca: tls.caPem,
          cert: tls.certPem,
          key: tls.keyPem,
        })
      : connect({ host, port, timeout: CONNECT_TIMEOUT_MS });
    const fail = (err: Error) => {
      agent.destroy();
      reject(
        new ApiError('InternalError', `cannot reach the agent of node ${node}: ${err.message}`),
      );
    };
    agent.once('error', fail);
    agent.once('timeout', () => fail(new Error('connection timed out')));
    agent.once(tls ? 'secureConnect' : 'connect', () => {
      agent.removeListener('error', fail);
      agent.setTimeout(0);
      resolve(agent);
    });
  });
}

/** The request line and headers sent to the agent: the client's handshake, our token. */
function upgradeRequest(
  req: IncomingMessage,
  path: string,
  host: string,
  token: string | undefined,
): string {
  const lines = [`${req.method ?? 'GET'} ${path} HTTP/1.1`, `Host: ${host}`];
  if (token !== undefined) lines.push(`Authorization: Bearer ${token}`);
  lines.push('Connection: Upgrade');
  for (const name of UPGRADE_HEADERS) {
    const value = req.headers[name];
    if (typeof value === 'string') lines.push(`${name}: ${value}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Copies bytes both ways until either side ends; an error on one side ends both. */
function pipeBothWays(client: Duplex, agent: Duplex): void {
  const abort = () => {
    client.destroy();
    agent.destroy();
  };
  client.on('error', abort);
  agent.on('error', abort);
  // end, not destroy: output still queued towards the client must reach it.
  client.on('close', () => agent.end());
  agent.on('close', () => client.end());
  client.pipe(agent);
  agent.pipe(client);
}

/** An exec upgrade refused before it reached an agent: answered with the error's Status. */
export function refuseUpgrade(socket: Duplex, err: unknown): ApiError {
  const apiErr =
    err instanceof ApiError
      ? err
      : new ApiError('InternalError', `Internal error occurred: ${(err as Error).message}`);
  rejectUpgrade(socket, apiErr);
  return apiErr;
}
