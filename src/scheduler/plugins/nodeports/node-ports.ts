import type { Pod } from '../../../api/types.js';
import {
  SKIP,
  SUCCESS,
  unschedulable,
  type CycleState,
  type FilterPlugin,
  type PreFilterPlugin,
  type Status,
} from '../../framework/interface.js';
import { podHostPorts, type HostPort, type NodeInfo } from '../../framework/nodeinfo.js';

/**
 * NodePorts keeps a pod off nodes where a host port it asks for is taken: same protocol and
 * port, and the same host IP or either side on 0.0.0.0 (which binds every address).
 */

const STATE_KEY = 'NodePorts';
const ALL_ADDRESSES = '0.0.0.0';

export const REASON_NODE_PORTS = "node(s) didn't have free ports for the requested pod ports";

/** Whether `wanted` collides with the ports already used on the node. */
export function portConflict(used: NodeInfo['usedPorts'], wanted: HostPort): boolean {
  const ips = used.get(`${wanted.protocol}/${wanted.port}`);
  if (!ips) return false;
  if (wanted.hostIP === ALL_ADDRESSES) return true;
  return ips.has(ALL_ADDRESSES) || ips.has(wanted.hostIP);
}

export const nodePorts = {
  name: 'NodePorts',

  preFilter(state: CycleState, pod: Pod): Status {
    const ports = podHostPorts(pod);
    state.set(STATE_KEY, ports);
    return ports.length === 0 ? SKIP : SUCCESS;
  },

  filter(state: CycleState, pod: Pod, node: NodeInfo): Status {
    const wanted = (state.get(STATE_KEY) as HostPort[] | undefined) ?? podHostPorts(pod);
    if (wanted.length === 0 || node.usedPorts.size === 0) return SUCCESS;
    for (const p of wanted) {
      if (portConflict(node.usedPorts, p)) return unschedulable(REASON_NODE_PORTS);
    }
    return SUCCESS;
  },
} satisfies PreFilterPlugin & FilterPlugin;
