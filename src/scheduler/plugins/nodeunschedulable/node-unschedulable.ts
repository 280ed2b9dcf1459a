import type { Pod } from '../../../api/types.js';
import {
  SUCCESS,
  unresolvable,
  type FilterPlugin,
  type Status,
} from '../../framework/interface.js';
import type { NodeInfo } from '../../framework/nodeinfo.js';

/** Skips cordoned nodes (spec.unschedulable) unless the pod tolerates the cordon taint. */
export const nodeUnschedulable = {
  name: 'NodeUnschedulable',

  filter(_state: unknown, pod: Pod, node: NodeInfo): Status {
    if (!node.node.spec?.unschedulable) return SUCCESS;
    const tolerations = (pod.spec.tolerations ?? []) as {
      key?: string;
      operator?: string;
      effect?: string;
    }[];
    const tolerated = tolerations.some(
      (t) =>
        (t.key === 'node.kubernetes.io/unschedulable' ||
          (t.key === undefined && t.operator === 'Exists')) &&
        (t.effect === undefined || t.effect === 'NoSchedule'),
    );
    return tolerated ? SUCCESS : unresolvable('node(s) were unschedulable');
  },
} satisfies FilterPlugin;
