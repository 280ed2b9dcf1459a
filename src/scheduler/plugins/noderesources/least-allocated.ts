import type { Pod } from '../../../api/types.js';
import type { CycleState, ScorePlugin } from '../../framework/interface.js';
import type { NodeInfo } from '../../framework/nodeinfo.js';
import { requestsOf } from './fit.js';

/**
 * Prefers nodes with the most free cpu and memory after placing the pod, weighing both
 * equally, on Kubernetes' 0..100 scale.
 */
export const leastAllocated = {
  name: 'NodeResourcesLeastAllocated',
  weight: 1,

  score(state: CycleState, pod: Pod, node: NodeInfo): number {
    const req = requestsOf(state, pod);
    const cpu = free(node.requested.milliCpu + req.milliCpu, node.allocatable.milliCpu);
    const memory = free(node.requested.memory + req.memory, node.allocatable.memory);
    return Math.floor((cpu + memory) / 2);
  },
} satisfies ScorePlugin;

/** The share of `capacity` left after `requested`, in percent; 0 without capacity. */
function free(requested: number, capacity: number): number {
  return capacity <= 0 ? 0 : Math.max(0, ((capacity - requested) * 100) / capacity);
}
