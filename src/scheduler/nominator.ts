import { objectKey, type Pod } from '../api/types.js';
import type { NodeInfo } from './framework/nodeinfo.js';
import { podPriority } from './queue.js';

/**
 * Pending pods nominated to a node by preemption (status.nominatedNodeName). Until such a
 * pod is bound, pods of equal or lower priority are filtered as if it already ran there,
 * so they cannot take the room its victims freed.
 */
export class Nominator {
  private readonly byNode = new Map<string, Map<string, Pod>>();
  private readonly nodeOf = new Map<string, string>();

  /** Records (or moves, or with no node clears) a pod's nomination. */
  set(pod: Pod, nodeName: string | undefined): void {
    const key = objectKey(pod);
    this.delete(key);
    if (!nodeName) return;
    let pods = this.byNode.get(nodeName);
    if (!pods) this.byNode.set(nodeName, (pods = new Map()));
    pods.set(key, pod);
    this.nodeOf.set(key, nodeName);
  }

  delete(key: string): void {
    const nodeName = this.nodeOf.get(key);
    if (nodeName === undefined) return;
    this.nodeOf.delete(key);
    const pods = this.byNode.get(nodeName);
    pods?.delete(key);
    if (pods?.size === 0) this.byNode.delete(nodeName);
  }

  get size(): number {
    return this.nodeOf.size;
  }

  /**
   * The nodes as `pod` should see them: nodes with nominated pods of at least its priority
   * (other than itself) are replaced by copies that count those pods. Without nominations
   * this is `nodes` itself, so the common case costs nothing per node.
   */
  view(pod: Pod, nodes: readonly NodeInfo[]): readonly NodeInfo[] {
    if (this.byNode.size === 0) return nodes;
    return [...this.withNominated(pod, nodes)];
  }

  private *withNominated(pod: Pod, nodes: Iterable<NodeInfo>): Generator<NodeInfo> {
    const key = objectKey(pod);
    const priority = podPriority(pod);
    for (const node of nodes) {
      const nominated = this.byNode.get(node.name);
      const counted = nominated
        ? [...nominated].filter(([k, p]) => k !== key && podPriority(p) >= priority)
        : [];
      if (counted.length === 0) {
        yield node;
        continue;
      }
      const copy = node.clone();
      for (const [, p] of counted) copy.addPod(p);
      yield copy;
    }
  }
}
