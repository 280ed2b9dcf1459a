import type { UserInfo } from './auth.js';

/**
 * Authorization. The admin (group `system:masters`) may do anything. A node agent
 * (`system:node:<name>` in group `system:nodes`) gets what Kubernetes' Node authorizer,
 * its `system:node` role and NodeRestriction admission give a kubelet, simplified:
 * - read (get, list, watch) the objects an agent needs: pods, nodes, services, endpoints,
 *   endpointslices, namespaces, events, node leases;
 * - get the ConfigMaps and Secrets that pods bound to it refer to, and no others (the
 *   graph part of Kubernetes' Node authorizer), plus the ConfigMaps of kube-public;
 * - create, update and patch its own Node and its status, and its own Lease in
 *   kube-node-lease;
 * - update or patch the status of, and delete, the pods bound to it;
 * - create, update and patch events.
 * Everyone else is refused. Non-resource paths (discovery, version, health, OpenAPI) are
 * open to every authenticated user.
 */

export interface ResourceAttributes {
  verb: string;
  group: string;
  /** Plural resource name, e.g. `pods`. */
  resource: string;
  subresource?: string;
  namespace?: string;
  /** The object's name; for create, the name in the body. */
  name?: string;
}

/** What the node rules need to know about the cluster. */
export interface NodeFacts {
  /** The node a pod is bound to ('' when unbound); undefined when the pod does not exist. */
  podNode(namespace: string, name: string): Promise<string | undefined>;
  /** Whether a pod bound to `node` refers to `ref` (`Secret/<ns>/<name>`, `ConfigMap/...`). */
  refers(node: string, ref: string): boolean;
}

/** The namespace whose ConfigMaps everyone may read (cluster settings live there). */
export const PUBLIC_NAMESPACE = 'kube-public';

export const NODES_GROUP = 'system:nodes';
export const NODE_USER_PREFIX = 'system:node:';
export const MASTERS_GROUP = 'system:masters';

const READ_VERBS = new Set(['get', 'list', 'watch']);
const WRITE_VERBS = new Set(['create', 'update', 'patch']);

/** Group/resource pairs a node may read. */
const NODE_READABLE = new Set([
  '/pods',
  '/nodes',
  '/services',
  '/endpoints',
  '/namespaces',
  '/events',
  'discovery.k8s.io/endpointslices',
  'events.k8s.io/events',
  'coordination.k8s.io/leases',
]);

/** The node name of a node identity, or undefined for any other user. */
export function nodeNameOf(user: UserInfo): string | undefined {
  if (!user.groups.includes(NODES_GROUP) || !user.name.startsWith(NODE_USER_PREFIX)) return;
  const name = user.name.slice(NODE_USER_PREFIX.length);
  return name || undefined;
}

/** Whether `user` may make the request. Pure except for the pod lookups through `facts`. */
export async function authorize(
  user: UserInfo,
  attrs: ResourceAttributes,
  facts: NodeFacts,
): Promise<boolean> {
  if (user.groups.includes(MASTERS_GROUP)) return true;
  const node = nodeNameOf(user);
  if (node === undefined) return false;
  return authorizeNode(node, attrs, facts);
}

async function authorizeNode(
  node: string,
  a: ResourceAttributes,
  facts: NodeFacts,
): Promise<boolean> {
  const gr = `${a.group}/${a.resource}`;
  if (READ_VERBS.has(a.verb) && NODE_READABLE.has(gr)) {
    if (gr === 'coordination.k8s.io/leases') return a.namespace === 'kube-node-lease';
    return a.subresource === undefined || a.subresource === 'status';
  }
  if ((gr === '/secrets' || gr === '/configmaps') && a.subresource === undefined) {
    if (gr === '/configmaps' && a.namespace === PUBLIC_NAMESPACE) return READ_VERBS.has(a.verb);
    if (a.verb !== 'get' || !a.namespace || !a.name) return false;
    const kind = gr === '/secrets' ? 'Secret' : 'ConfigMap';
    return facts.refers(node, `${kind}/${a.namespace}/${a.name}`);
  }
  if (gr === '/nodes' && WRITE_VERBS.has(a.verb)) {
    return a.name === node && (a.subresource === undefined || a.subresource === 'status');
  }
  if (gr === 'coordination.k8s.io/leases' && WRITE_VERBS.has(a.verb)) {
    return a.namespace === 'kube-node-lease' && a.name === node && a.subresource === undefined;
  }
  if (gr === '/events' || gr === 'events.k8s.io/events') {
    return WRITE_VERBS.has(a.verb) && a.subresource === undefined;
  }
  if (gr === '/pods' && a.namespace && a.name) {
    const statusWrite = a.subresource === 'status' && (a.verb === 'update' || a.verb === 'patch');
    const deletion = a.subresource === undefined && a.verb === 'delete';
    if (!statusWrite && !deletion) return false;
    const boundTo = await facts.podNode(a.namespace, a.name);
    // A pod that does not exist reveals nothing; the request goes on to its 404.
    return boundTo === undefined || boundTo === node;
  }
  return false;
}

/** The message of a 403, worded as kube-apiserver words it. */
export function forbiddenMessage(user: UserInfo, a: ResourceAttributes): string {
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const what = a.name && a.verb !== 'create' ? `${a.resource} "${a.name}"` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  return (
    `${what} is forbidden: User "${user.name}" cannot ${a.verb} resource "${resource}" ` +
    `in API group "${a.group}" ${scope}`
  );
}
