import type { Pod, Taint } from '../../../api/types.js';
import {
  SUCCESS,
  unresolvable,
  type FilterPlugin,
  type Status,
} from '../../framework/interface.js';
import type { NodeInfo } from '../../framework/nodeinfo.js';
import { toleratedBy } from '../tainttoleration/taint-toleration.js';

/** The taint a cordoned node stands for, whether or not it carries it. */
const CORDON_TAINT: Taint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };

/** Skips cordoned nodes (spec.unschedulable) unless the pod tolerates the cordon taint. */
export const nodeUnschedulable = {
  name: 'NodeUnschedulable',

  filter(_state: unknown, pod: Pod, node: NodeInfo): Status {
    if (!node.unschedulable) return SUCCESS;
    if (toleratedBy(pod.spec.tolerations, CORDON_TAINT)) return SUCCESS;
    return unresolvable('node(s) were unschedulable');
  },
} satisfies FilterPlugin;
