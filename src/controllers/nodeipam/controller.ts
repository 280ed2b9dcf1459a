import { byGroupResource } from '../../api/resources.js';
import type { NodeObject } from '../../api/types.js';
import { EventRecorder } from '../../client/events.js';
import type { InformerFactory } from '../../client/factory.js';
import type { Informer } from '../../client/informer.js';
import type { KubeClient } from '../../client/rest.js';
import { QueueController } from '../base.js';
import { blockIndex, firstFree, formatCidr, parseCidr, type Cidr } from './cidr.js';

const NODES = byGroupResource.get('/nodes')!;

/** k3s' pod range, cut into one /24 per node: 256 nodes of up to 254 pods. */
export const DEFAULT_CLUSTER_CIDR = '10.42.0.0/16';
export const DEFAULT_NODE_MASK = 24;

export interface NodeIpamOptions {
  workers?: number;
  clusterCidr?: string;
  nodeMaskSize?: number;
}

/**
 * Gives every node a pod range of its own (spec.podCIDR and spec.podCIDRs) from the
 * cluster's range, the lowest block that no other node holds. A node that registers with
 * a range already (an agent started with --pod-cidr) keeps it, and that block counts as
 * used. The API server refuses to change a node's podCIDR once set, so a range is never
 * moved under running pods. Nodes are handled one at a time (one worker), so two nodes
 * never get the same block from this controller.
 */
export class NodeIpamController extends QueueController {
  private readonly nodes: Informer<NodeObject>;
  private readonly events: EventRecorder;
  private readonly range: Cidr;
  private readonly mask: number;
  /** Blocks handed out by this controller that its cache may not show yet. */
  private readonly pending = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    factory: InformerFactory,
    opts: NodeIpamOptions = {},
  ) {
    super('node-ipam-controller', 1);
    const text = opts.clusterCidr ?? DEFAULT_CLUSTER_CIDR;
    const range = parseCidr(text);
    if (!range) throw new Error(`cluster CIDR ${JSON.stringify(text)} is not an IPv4 CIDR`);
    this.range = range;
    this.mask = opts.nodeMaskSize ?? DEFAULT_NODE_MASK;
    if (this.mask < range.prefix || this.mask > 30) {
      throw new Error(`node mask /${this.mask} does not fit in the cluster CIDR ${text}`);
    }
    this.nodes = factory.informer(NODES);
    this.events = new EventRecorder(client, 'node-ipam-controller');
  }

  register(): void {
    this.nodes.addHandlers({
      onAdd: (n) => this.enqueueIfMissing(n),
      onUpdate: (_o, n) => this.enqueueIfMissing(n),
      onDelete: (n) => this.pending.delete(n.metadata.name!),
    });
  }

  private enqueueIfMissing(node: NodeObject): void {
    if (node.spec?.podCIDR) this.pending.delete(node.metadata.name!);
    else this.enqueue(node);
  }

  protected async reconcile(name: string): Promise<void> {
    const node = this.nodes.get(name);
    if (!node || node.spec?.podCIDR) return;
    const block = firstFree(this.range, this.mask, this.usedBlocks(name));
    if (!block) {
      const message = `no pod range left in ${formatCidr(this.range)} for node ${name}`;
      this.log.warn({ node: name }, message);
      this.events.warning(node, 'CIDRNotAvailable', message);
      return;
    }
    const cidr = formatCidr(block);
    const updated = structuredClone(node);
    updated.spec = { ...(updated.spec ?? {}), podCIDR: cidr, podCIDRs: [cidr] };
    await this.client.update(NODES, updated);
    this.pending.set(name, blockIndex(this.range, this.mask, block)!);
    this.log.info({ node: name, podCIDR: cidr }, 'assigned pod range');
  }

  private usedBlocks(except: string): Set<number> {
    const used = new Set<number>();
    for (const node of this.nodes.list()) {
      const cidr = node.spec?.podCIDR && parseCidr(node.spec.podCIDR);
      if (!cidr || node.metadata.name === except) continue;
      const index = blockIndex(this.range, this.mask, cidr);
      if (index !== undefined) used.add(index);
    }
    for (const [node, index] of this.pending) if (node !== except) used.add(index);
    return used;
  }
}
