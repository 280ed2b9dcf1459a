import { objectKey, type Pod } from '../api/types.js';
import type { HostPort } from '../proxy/rules.js';

/**
 * The container ports one pod publishes on its node (`hostPort`), once it has an address
 * and until it ends. A pod on the host's network has its ports there already: none.
 */
export function podHostPorts(pod: Pod): HostPort[] {
  const podIP = pod.status?.podIP;
  const phase = pod.status?.phase;
  if (!podIP || phase === 'Succeeded' || phase === 'Failed' || pod.spec?.hostNetwork) return [];
  const out: HostPort[] = [];
  for (const c of pod.spec?.containers ?? []) {
    for (const port of c.ports ?? []) {
      if (!port?.hostPort) continue;
      out.push({
        pod: objectKey(pod),
        protocol: port.protocol ?? 'TCP',
        hostPort: port.hostPort,
        hostIP: typeof port.hostIP === 'string' ? port.hostIP : undefined,
        podIP,
        containerPort: port.containerPort,
      });
    }
  }
  return out;
}

/** The container ports the given pods publish on this node, pod by pod. */
export function hostPortsOf(pods: Pod[]): HostPort[] {
  return pods.flatMap(podHostPorts);
}

function samePorts(a: HostPort[], b: HostPort[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((p, i) => {
    const q = b[i];
    return (
      p.pod === q.pod &&
      p.protocol === q.protocol &&
      p.hostPort === q.hostPort &&
      p.hostIP === q.hostIP &&
      p.podIP === q.podIP &&
      p.containerPort === q.containerPort
    );
  });
}

/**
 * The host ports of a node's pods, kept up to date from each pod's own events, so that an
 * event costs the work of that pod alone rather than a walk of every pod on the node (500
 * pods, 1000 updates: see bench/agent-events.ts). `update` and `remove` say whether the
 * node's set changed; only then does the caller need `list()` and the proxy a new ruleset.
 * Not safe for concurrent use: the agent calls it from its informer's handlers.
 */
export class HostPortBook {
  /**
   * By pod key (`namespace/name`), as the informer keys them: a pod created again under
   * its name replaces the old one's entry. Pods that publish nothing have no entry.
   */
  private readonly byPod = new Map<string, HostPort[]>();

  /** Records the pod as it is now; true when its ports changed. */
  update(pod: Pod): boolean {
    const key = objectKey(pod);
    const ports = podHostPorts(pod);
    if (samePorts(this.byPod.get(key) ?? [], ports)) return false;
    if (ports.length === 0) this.byPod.delete(key);
    else this.byPod.set(key, ports);
    return true;
  }

  /** Forgets a pod that is gone; true when it had published ports. */
  remove(pod: Pod): boolean {
    return this.byPod.delete(objectKey(pod));
  }

  /** Every port the node publishes, in the order the pods first published theirs. */
  list(): HostPort[] {
    return [...this.byPod.values()].flat();
  }
}
