import { parseQuantity } from './quantity.js';
import type { Container, PodSpec } from './types.js';

/** A pod's quality of service class, as Kubernetes reports it in `status.qosClass`. */
export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

const QOS_RESOURCES = ['cpu', 'memory'];

/**
 * The QoS class of a pod spec, by Kubernetes' rules over its containers and init
 * containers (cpu and memory only; zero quantities count as unset): BestEffort when none
 * requests or limits anything; Guaranteed when every container limits both, and the
 * summed requests equal the summed limits; Burstable otherwise. Call it after defaulting,
 * which sets a missing request to its limit.
 */
export function qosClassOf(spec: PodSpec): QosClass {
  const requests = new Map<string, number>();
  const limits = new Map<string, number>();
  let everyContainerLimited = true;
  for (const c of [...listOf(spec.containers), ...listOf(spec.initContainers)]) {
    addNonZero(requests, c?.resources?.requests);
    const limited = addNonZero(limits, c?.resources?.limits);
    if (QOS_RESOURCES.some((name) => !limited.has(name))) everyContainerLimited = false;
  }
  if (requests.size === 0 && limits.size === 0) return 'BestEffort';
  if (!everyContainerLimited || requests.size !== limits.size) return 'Burstable';
  for (const [name, request] of requests) {
    if (limits.get(name) !== request) return 'Burstable';
  }
  return 'Guaranteed';
}

// Defaulting runs before validation, so a field may not be a list yet.
function listOf(value: unknown): Container[] {
  return Array.isArray(value) ? (value as Container[]) : [];
}

/** Adds the non-zero cpu and memory quantities to `sums`; returns the names it added. */
function addNonZero(sums: Map<string, number>, list: unknown): Set<string> {
  const added = new Set<string>();
  if (!list || typeof list !== 'object') return added;
  for (const name of QOS_RESOURCES) {
    const text = (list as Record<string, unknown>)[name];
    if (typeof text !== 'string' && typeof text !== 'number') continue;
    const value = parseQuantity(text);
    if (!value) continue;
    sums.set(name, (sums.get(name) ?? 0) + value);
    added.add(name);
  }
  return added;
}
