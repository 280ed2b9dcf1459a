import type { Pod } from '../../../api/types.js';
import {
  SUCCESS,
  unschedulable,
  type FilterPlugin,
  type Status,
} from '../../framework/interface.js';
import type { NodeInfo } from '../../framework/nodeinfo.js';

/**
 * Skips nodes whose Ready condition is not True. Kubernetes reaches the same result through
 * the node.kubernetes.io/not-ready taint; the taint and toleration plugin will take this
 * over, and until then a pod cannot tolerate a node that is not ready.
 */
export const nodeReady = {
  name: 'NodeReady',

  filter(_state: unknown, _pod: Pod, node: NodeInfo): Status {
    return node.ready ? SUCCESS : unschedulable('node(s) were not ready');
  },
} satisfies FilterPlugin;
