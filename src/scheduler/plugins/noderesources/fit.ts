import type { Pod } from '../../../api/types.js';
import {
  SUCCESS,
  unschedulable,
  type CycleState,
  type FilterPlugin,
  type PreFilterPlugin,
  type Status,
} from '../../framework/interface.js';
import { podRequests, type NodeInfo, type Resources } from '../../framework/nodeinfo.js';

const STATE_KEY = 'NodeResourcesFit';

/** Filters out nodes whose free allocatable resources cannot hold the pod's requests. */
export const fit = {
  name: 'NodeResourcesFit',

  preFilter(state: CycleState, pod: Pod): Status {
    state.set(STATE_KEY, podRequests(pod));
    return SUCCESS;
  },

  filter(state: CycleState, pod: Pod, node: NodeInfo): Status {
    const req = (state.get(STATE_KEY) as Resources | undefined) ?? podRequests(pod);
    const free = node.allocatable;
    const used = node.requested;
    const reasons: string[] = [];
    if (used.pods + 1 > free.pods) reasons.push('Too many pods');
    if (req.milliCpu > 0 && used.milliCpu + req.milliCpu > free.milliCpu)
      reasons.push('Insufficient cpu');
    if (req.memory > 0 && used.memory + req.memory > free.memory)
      reasons.push('Insufficient memory');
    if (
      req.ephemeralStorage > 0 &&
      used.ephemeralStorage + req.ephemeralStorage > free.ephemeralStorage
    ) {
      reasons.push('Insufficient ephemeral-storage');
    }
    return reasons.length === 0 ? SUCCESS : unschedulable(...reasons);
  },
} satisfies PreFilterPlugin & FilterPlugin;
