import { request, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ApiError, badRequest, errorFromResponse } from '../api/errors.js';
import { byGroupResource } from '../api/resources.js';
import type { KObject, NodeObject } from '../api/types.js';
import type { Registry } from './registry.js';

/**
 * Requests the API server makes to node agents on a client's behalf (logs), the way
 * kube-apiserver talks to kubelets: the node's InternalIP and the agent port it reports.
 */

/**
 * The API server's credential towards agents: a client certificate over HTTPS (agents
 * that joined with `flyces agent --server`, whose serving certificates are checked
 * against `tls.caPem`), or a bearer token over plain HTTP (the agent of `flyces up`).
 */
export interface NodeDialer {
  tls?: { certPem: string; keyPem: string; caPem: string };
  token?: string;
}

/** The agent endpoint of a node: its InternalIP and the port in its daemonEndpoints. */
export function agentEndpoint(node: NodeObject): { host: string; port: number } {
  const host = node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
  const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port;
  if (!host || !port) {
    throw new ApiError(
      'ServiceUnavailable',
      `node ${node.metadata.name} has not reported its agent endpoint yet`,
    );
  }
  return { host, port };
}

/** Log options and the check each value must pass, as PodLogOptions defines them. */
const LOG_OPTIONS: Record<string, (v: string) => boolean> = {
  follow: isBool,
  previous: isBool,
  timestamps: isBool,
  tailLines: (v) => /^\d+$/.test(v),
  sinceSeconds: (v) => /^\d+$/.test(v) && Number(v) > 0,
  limitBytes: (v) => /^\d+$/.test(v) && Number(v) > 0,
  sinceTime: (v) => !Number.isNaN(Date.parse(v)),
};

function isBool(v: string): boolean {
  return v === 'true' || v === 'false';
}

/** The log options to forward to the agent; a malformed value is refused by name. */
function logOptions(query: URLSearchParams): URLSearchParams {
  const forward = new URLSearchParams();
  for (const [key, valid] of Object.entries(LOG_OPTIONS)) {
    const value = query.get(key);
    if (value === null) continue;
    if (!valid(value)) throw badRequest(`invalid log option ${key}=${JSON.stringify(value)}`);
    forward.set(key, value);
  }
  if (forward.has('sinceSeconds') && forward.has('sinceTime')) {
    throw badRequest('at most one of sinceTime or sinceSeconds may be specified');
  }
  return forward;
}

/**
 * The container a request names (`?container=`), or the pod's only one; refuses a missing
 * choice among several, and names that are not the pod's (init containers count for logs).
 */
export function pickContainer(pod: KObject, query: URLSearchParams, withInit: boolean): string {
  const names = (list: { name: string }[] | undefined) => (list ?? []).map((c) => c.name);
  const containers = names(pod.spec?.containers);
  const valid = withInit ? [...containers, ...names(pod.spec?.initContainers)] : containers;
  const container = query.get('container');
  if (!container) {
    if (containers.length === 1) return containers[0];
    throw badRequest(
      `a container name must be specified for pod ${pod.metadata.name}, ` +
        `choose one of: [${containers.join(' ')}]`,
    );
  }
  if (!valid.includes(container)) {
    throw badRequest(`container ${container} is not valid for pod ${pod.metadata.name}`);
  }
  return container;
}

/** The agent endpoint of the node a pod is bound to. */
export async function nodeEndpoint(
  registry: Registry,
  pod: KObject,
): Promise<{ host: string; port: number; node: string }> {
  const node = (await registry.get(
    byGroupResource.get('/nodes')!,
    undefined,
    pod.spec.nodeName,
  )) as NodeObject;
  return { ...agentEndpoint(node), node: node.metadata.name! };
}

/**
 * Opens the log stream of a pod's container on its node; the caller pipes the response.
 * `signal` gives up the request (the client went away before the agent answered).
 */
export async function openPodLogs(
  registry: Registry,
  pod: KObject,
  query: URLSearchParams,
  dialer: NodeDialer,
  signal?: AbortSignal,
): Promise<IncomingMessage> {
  const container = pickContainer(pod, query, true);
  const { host, port, node } = await nodeEndpoint(registry, pod);
  const forward = logOptions(query);
  const path = `/containerLogs/${pod.metadata.namespace}/${pod.metadata.name}/${container}?${forward}`;
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      if ((res.statusCode ?? 500) < 400) return resolve(res);
      collectError(res).then(reject, reject);
    };
    const { tls, token } = dialer;
    const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
    const req = tls
      ? httpsRequest(
          {
            host,
            port,
            path,
            headers,
            signal,
            ca: tls.caPem,
            cert: tls.certPem,
            key: tls.keyPem,
          },
          onResponse,
        )
      : request({ host, port, path, headers, signal }, onResponse);
    req.on('error', (err) =>
      reject(
        new ApiError('InternalError', `cannot reach the agent of node ${node}: ${err.message}`),
      ),
    );
    req.end();
  });
}

/** Turns an agent's error response into the ApiError it carries. */
async function collectError(res: IncomingMessage): Promise<ApiError> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return errorFromResponse(res.statusCode ?? 500, Buffer.concat(chunks).toString('utf8'));
}
