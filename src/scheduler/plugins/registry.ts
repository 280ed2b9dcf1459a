import type { Plugin } from '../framework/interface.js';
import { fit } from './noderesources/fit.js';
import { leastAllocated } from './noderesources/least-allocated.js';
import { nodeName } from './nodename/node-name.js';
import { nodeReady } from './nodeready/node-ready.js';
import { nodeSelector } from './nodeselector/node-selector.js';
import { nodeUnschedulable } from './nodeunschedulable/node-unschedulable.js';

/** The plugins of the default profile, in the order their filters run (cheapest first). */
export function defaultPlugins(): Plugin[] {
  return [nodeName, nodeUnschedulable, nodeReady, nodeSelector, fit, leastAllocated];
}
