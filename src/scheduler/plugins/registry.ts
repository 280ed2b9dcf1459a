import type { Plugin } from '../framework/interface.js';
import {
  interPodAffinity,
  type InterPodAffinityOptions,
} from './interpodaffinity/inter-pod-affinity.js';
import { nodeAffinity } from './nodeaffinity/node-affinity.js';
import { nodeName } from './nodename/node-name.js';
import { nodePorts } from './nodeports/node-ports.js';
import { nodeReady } from './nodeready/node-ready.js';
import { balancedAllocation } from './noderesources/balanced-allocation.js';
import { fit } from './noderesources/fit.js';
import { leastAllocated } from './noderesources/least-allocated.js';
import { nodeUnschedulable } from './nodeunschedulable/node-unschedulable.js';
import { podTopologySpread } from './podtopologyspread/pod-topology-spread.js';
import { taintToleration } from './tainttoleration/taint-toleration.js';

export type DefaultPluginOptions = InterPodAffinityOptions;

/**
 * The plugins of the default profile, in the order their filters run: checks of the node
 * object alone first, then resources, then the plugins that look at other pods. Score
 * weights follow Kubernetes' defaults: taints 3; node affinity, topology spread and
 * inter-pod affinity 2; least and balanced allocation 1.
 */
export function defaultPlugins(options: DefaultPluginOptions = {}): Plugin[] {
  return [
    nodeName,
    nodeUnschedulable,
    nodeReady,
    taintToleration,
    nodeAffinity,
    nodePorts,
    fit,
    podTopologySpread,
    interPodAffinity(options),
    leastAllocated,
    balancedAllocation,
  ];
}
