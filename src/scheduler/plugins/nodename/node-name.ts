import type { Pod } from '../../../api/types.js';
import {
  SKIP,
  SUCCESS,
  unresolvable,
  type FilterPlugin,
  type PreFilterPlugin,
  type Status,
} from '../../framework/interface.js';
import type { NodeInfo } from '../../framework/nodeinfo.js';

/** A pod that names a node in spec.nodeName fits only that node. */
export const nodeName = {
  name: 'NodeName',

  preFilter(_state: unknown, pod: Pod): Status {
    return pod.spec.nodeName ? SUCCESS : SKIP;
  },

  filter(_state: unknown, pod: Pod, node: NodeInfo): Status {
    const wanted = pod.spec.nodeName;
    if (!wanted || wanted === node.name) return SUCCESS;
    return unresolvable("node(s) didn't match the requested node name");
  },
} satisfies PreFilterPlugin & FilterPlugin;
