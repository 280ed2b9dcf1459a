import type { Pod } from '../api/types.js';
import {
  Code,
  isBind,
  isPostFilter,
  isReserve,
  SUCCESS,
  type BindPlugin,
  type CycleState,
  type Plugin,
  type PostFilterPlugin,
  type PostFilterResult,
  type ReservePlugin,
  type Status,
} from './framework/interface.js';
import type { NodeInfo } from './framework/nodeinfo.js';

/**
 * Runs the extension points after filtering and scoring: reserve and unreserve, post-filter
 * (preemption) and bind, over the plugins that implement each, in the order given.
 */
export class Extensions {
  private readonly reservers: ReservePlugin[];
  private readonly postFilters: PostFilterPlugin[];
  private readonly binders: BindPlugin[];

  constructor(plugins: Plugin[]) {
    this.reservers = plugins.filter(isReserve);
    this.postFilters = plugins.filter(isPostFilter);
    this.binders = plugins.filter(isBind);
  }

  /** Reserves the node in every plugin; on a failure unreserves all and returns it. */
  reserve(state: CycleState, pod: Pod, nodeName: string): Status {
    for (const p of this.reservers) {
      const status = p.reserve(state, pod, nodeName);
      if (status.code === Code.Success) continue;
      this.unreserve(state, pod, nodeName);
      return { ...status, plugin: p.name };
    }
    return SUCCESS;
  }

  /** Undoes reserve in every plugin, last first. */
  unreserve(state: CycleState, pod: Pod, nodeName: string): void {
    for (let i = this.reservers.length - 1; i >= 0; i--) {
      this.reservers[i].unreserve(state, pod, nodeName);
    }
  }

  /** The first successful post-filter's result, or an Unschedulable one if none helped. */
  async postFilter(state: CycleState, pod: Pod, nodes: NodeInfo[]): Promise<PostFilterResult> {
    const reasons: string[] = [];
    for (const p of this.postFilters) {
      const result = await p.postFilter(state, pod, nodes);
      if (result.status.code === Code.Success) return result;
      reasons.push(...result.status.reasons);
    }
    return { status: { code: Code.Unschedulable, reasons } };
  }

  /** Binds with the first plugin that handles the pod; an Error status if none did. */
  async bind(state: CycleState, pod: Pod, nodeName: string): Promise<Status> {
    for (const p of this.binders) {
      let status: Status | undefined;
      try {
        status = await p.bind(state, pod, nodeName);
      } catch (err) {
        status = { code: Code.Error, reasons: [(err as Error).message ?? String(err)] };
      }
      if (status) return { ...status, plugin: p.name };
    }
    return { code: Code.Error, reasons: ['no bind plugin handled the pod'] };
  }
}
