import type { Pod } from '../../../api/types.js';
import type { CycleState, ScorePlugin } from '../../framework/interface.js';
import {
  podNonZeroRequests,
  type NodeInfo,
  type NonZeroRequests,
} from '../../framework/nodeinfo.js';

const STATE_KEY = 'NodeResourcesLeastAllocated';

/**
 * Prefers nodes with the most free cpu and memory after placing the pod, weighing both
 * equally, on Kubernetes' 0..100 scale. Requests are counted non-zero (100m, 200Mi for a
 * container that sets none), so pods without requests spread instead of piling up.
 */
export const leastAllocated = {
  name: 'NodeResourcesLeastAllocated',
  weight: 1,

  score(state: CycleState, pod: Pod, node: NodeInfo): number {
    let req = state.get(STATE_KEY) as NonZeroRequests | undefined;
    if (!req) state.set(STATE_KEY, (req = podNonZeroRequests(pod)));
    const used = node.nonZeroRequested;
    const cpu = free(used.milliCpu + req.milliCpu, node.allocatable.milliCpu);
    const memory = free(used.memory + req.memory, node.allocatable.memory);
    return Math.floor((cpu + memory) / 2);
  },
} satisfies ScorePlugin;

/** The share of `capacity` left after `requested`, in percent; 0 without capacity. */
function free(requested: number, capacity: number): number {
  return capacity <= 0 ? 0 : Math.max(0, ((capacity - requested) * 100) / capacity);
}
