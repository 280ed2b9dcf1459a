import type { NodeInfo } from './nodeinfo.js';

/**
 * The scheduler's node snapshot by name, which also hands out its nodes as an array for
 * `Framework.schedule`. The array is built once and kept until a node is added or removed,
 * so scheduling a pod does not copy 5,000 references first.
 */
export class NodeSnapshot extends Map<string, NodeInfo> {
  private cached?: NodeInfo[];

  override set(name: string, info: NodeInfo): this {
    if (super.get(name) !== info) this.cached = undefined;
    return super.set(name, info);
  }

  override delete(name: string): boolean {
    const had = super.delete(name);
    if (had) this.cached = undefined;
    return had;
  }

  override clear(): void {
    this.cached = undefined;
    super.clear();
  }

  /** The nodes in insertion order; the same array until the membership changes. */
  list(): readonly NodeInfo[] {
    return (this.cached ??= [...super.values()]);
  }
}

/**
 * The nodes of a snapshot as an array: cached when the snapshot is a NodeSnapshot, copied
 * otherwise (a plain Map cannot tell when its members change).
 */
export function nodeList(snapshot: Map<string, NodeInfo>): readonly NodeInfo[] {
  return snapshot instanceof NodeSnapshot ? snapshot.list() : [...snapshot.values()];
}
