import type { Pod } from '../../../api/types.js';
import {
  SUCCESS,
  unresolvable,
  type FilterPlugin,
  type Status,
} from '../../framework/interface.js';
import type { NodeInfo } from '../../framework/nodeinfo.js';

/** A pod's nodeSelector must match the node's labels exactly. */
export const nodeSelector = {
  name: 'NodeSelector',

  filter(_state: unknown, pod: Pod, node: NodeInfo): Status {
    const selector = pod.spec.nodeSelector;
    if (!selector) return SUCCESS;
    const labels = node.node.metadata.labels ?? {};
    for (const [key, value] of Object.entries(selector)) {
      if (labels[key] !== value)
        return unresolvable("node(s) didn't match Pod's node affinity/selector");
    }
    return SUCCESS;
  },
} satisfies FilterPlugin;
