import type { Pod, Taint } from '../../../api/types.js';
import {
  SUCCESS,
  unschedulable,
  type FilterPlugin,
  type Status,
} from '../../framework/interface.js';
import type { NodeInfo } from '../../framework/nodeinfo.js';
import { toleratedBy } from '../tainttoleration/taint-toleration.js';

/** The taint Kubernetes' node lifecycle controller puts on a node that is not ready. */
const NOT_READY_TAINT: Taint = { key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' };

/**
 * Skips nodes whose Ready condition is not True, unless the pod tolerates the not-ready
 * taint. Kubernetes reaches the same result through that taint alone; flyCes reads the
 * condition because its node lifecycle controller does not taint nodes (yet), and the
 * TaintToleration plugin handles the taint where a node carries it.
 */
export const nodeReady = {
  name: 'NodeReady',

  filter(_state: unknown, pod: Pod, node: NodeInfo): Status {
    if (node.ready || toleratedBy(pod.spec.tolerations, NOT_READY_TAINT)) return SUCCESS;
    return unschedulable('node(s) were not ready');
  },
} satisfies FilterPlugin;
