import type { Pod } from '../../../api/types.js';
import { MAX_NODE_SCORE, type CycleState, type ScorePlugin } from '../../framework/interface.js';
import type { NodeInfo } from '../../framework/nodeinfo.js';
import { requestsOf } from './fit.js';

/** The share of `capacity` that `requested` takes, capped at 1; 1 when there is no capacity. */
function fraction(requested: number, capacity: number): number {
  return capacity <= 0 ? 1 : Math.min(1, requested / capacity);
}

/**
 * Prefers nodes whose cpu and memory would be used in equal shares after placing the pod,
 * so neither runs out while the other idles: 100 × (1 − standard deviation of the two
 * fractions), which for two values is half their difference.
 */
export const balancedAllocation = {
  name: 'NodeResourcesBalancedAllocation',
  weight: 1,

  score(state: CycleState, pod: Pod, node: NodeInfo): number {
    const req = requestsOf(state, pod);
    const cpu = fraction(node.requested.milliCpu + req.milliCpu, node.allocatable.milliCpu);
    const memory = fraction(node.requested.memory + req.memory, node.allocatable.memory);
    const deviation = Math.abs(cpu - memory) / 2;
    return Math.floor((1 - deviation) * MAX_NODE_SCORE);
  },
} satisfies ScorePlugin;
