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

export const STATE_KEY = 'NodeResourcesFit';

/** The pod's requests as the fit pre-filter stored them, or worked out now. */
export function requestsOf(state: CycleState, pod: Pod): Resources {
  return (state.get(STATE_KEY) as Resources | undefined) ?? podRequests(pod);
}

/** Every resource the node lacks for the pod, as Kubernetes names them. */
function shortages(req: Resources, node: NodeInfo): Status {
  const free = node.allocatable;
  const used = node.requested;
  const reasons: string[] = [];
  if (used.pods + 1 > free.pods) reasons.push('Too many pods');
  if (req.milliCpu > 0 && used.milliCpu + req.milliCpu > free.milliCpu) {
    reasons.push('Insufficient cpu');
  }
  if (req.memory > 0 && used.memory + req.memory > free.memory) {
    reasons.push('Insufficient memory');
  }
  if (
    req.ephemeralStorage > 0 &&
    used.ephemeralStorage + req.ephemeralStorage > free.ephemeralStorage
  ) {
    reasons.push('Insufficient ephemeral-storage');
  }
  scalarShortages(req, node, reasons);
  return reasons.length === 0 ? SUCCESS : unschedulable(...reasons);
}

function scalarShortages(req: Resources, node: NodeInfo, reasons: string[]): void {
  if (!req.scalar) return;
  const free = node.allocatable.scalar;
  const used = node.requested.scalar;
  for (const [name, wanted] of Object.entries(req.scalar)) {
    if (wanted <= 0) continue;
    if ((used?.[name] ?? 0) + wanted > (free?.[name] ?? 0)) reasons.push(`Insufficient ${name}`);
  }
}

/**
 * Filters out nodes whose free allocatable resources cannot hold the pod's requests: cpu,
 * memory, ephemeral-storage, the pod count, and extended and hugepages resources.
 */
export const fit = {
  name: 'NodeResourcesFit',

  preFilter(state: CycleState, pod: Pod): Status {
    state.set(STATE_KEY, podRequests(pod));
    return SUCCESS;
  },

  filter(state: CycleState, pod: Pod, node: NodeInfo): Status {
    const req = requestsOf(state, pod);
    const free = node.allocatable;
    const used = node.requested;
    const fits =
      used.pods + 1 <= free.pods &&
      (req.milliCpu <= 0 || used.milliCpu + req.milliCpu <= free.milliCpu) &&
      (req.memory <= 0 || used.memory + req.memory <= free.memory) &&
      (req.ephemeralStorage <= 0 ||
        used.ephemeralStorage + req.ephemeralStorage <= free.ephemeralStorage);
    if (fits && !req.scalar) return SUCCESS;
    return shortages(req, node);
  },
} satisfies PreFilterPlugin & FilterPlugin;
