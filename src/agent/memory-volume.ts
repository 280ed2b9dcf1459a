import { parseQuantity } from '../api/quantity.js';
import type { Container, Pod } from '../api/types.js';

/**
 * The size of a `medium: Memory` emptyDir's tmpfs, as kubelet sizes it: the node's
 * allocatable memory, or the pod's memory limit where lower, or the volume's sizeLimit
 * where lower still. Its pages count against the memory of whoever wrote them, but outlive
 * a container that is killed for it; sized so, a volume fills up (ENOSPC) before it can hold
 * more than its pod may use. Undefined when nothing bounds it (the kernel's default, half
 * the machine's memory).
 */
export function memoryVolumeBytes(
  pod: Pod,
  sizeLimit: unknown,
  allocatableMemory: string | undefined,
): number | undefined {
  const bounds = [quantity(allocatableMemory), podMemoryLimit(pod), quantity(sizeLimit)].filter(
    (b): b is number => b !== undefined && b > 0,
  );
  return bounds.length > 0 ? Math.ceil(Math.min(...bounds)) : undefined;
}

/**
 * The pod's memory limit as its cgroup would have it: its app containers' limits together,
 * or an init container's where higher (they run one at a time, before the others).
 * Undefined unless every container has one.
 */
export function podMemoryLimit(pod: Pod): number | undefined {
  const limitOf = (c: Container) => quantity(c.resources?.limits?.memory);
  const apps = (pod.spec.containers ?? []).map(limitOf);
  const inits = (pod.spec.initContainers ?? []).map(limitOf);
  const all = [...apps, ...inits];
  if (all.length === 0 || all.some((l) => l === undefined || l <= 0)) return undefined;
  const sum = (apps as number[]).reduce((a, b) => a + b, 0);
  return Math.max(sum, ...(inits as number[]));
}

function quantity(value: unknown): number | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  return parseQuantity(value);
}
