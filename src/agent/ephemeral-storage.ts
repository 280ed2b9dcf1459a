import { parseQuantity } from '../api/quantity.js';
import type { Pod } from '../api/types.js';

/**
 * Kubelet's hold on a pod's ephemeral storage: a container past its `ephemeral-storage`
 * limit (its writable layer, log and termination message file), a disk-backed emptyDir
 * past its `sizeLimit`, or a pod whose containers all have limits and whose containers and
 * emptyDirs together pass their sum, is evicted. Pure; the agent measures (see Agent.checkEphemeralStorage).
 */

/** What a pod takes on the node's disk, in bytes. */
export interface StorageUse {
  /** By container name: its running instance's writable layer, log and message file. */
  containers: Map<string, number>;
  /** By volume name: its disk-backed emptyDirs. */
  emptyDirs: Map<string, number>;
}

const LIMIT = 'ephemeral-storage';

function quantity(v: unknown): number | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const n = parseQuantity(String(v));
  return n !== undefined && Number.isFinite(n) ? n : undefined;
}

/** The disk-backed emptyDirs of the pod, with their sizeLimit where given. */
export function diskEmptyDirs(pod: Pod): { name: string; sizeLimit?: number; shown: string }[] {
  const out: { name: string; sizeLimit?: number; shown: string }[] = [];
  for (const v of (pod.spec?.volumes ?? []) as { name?: string; emptyDir?: any }[]) {
    if (!v?.emptyDir || typeof v.name !== 'string' || v.emptyDir.medium === 'Memory') continue;
    out.push({
      name: v.name,
      sizeLimit: quantity(v.emptyDir.sizeLimit),
      shown: String(v.emptyDir.sizeLimit ?? ''),
    });
  }
  return out;
}

/** Whether anything of the pod has an ephemeral storage bound to hold it to. */
export function hasStorageBounds(pod: Pod): boolean {
  return (
    (pod.spec?.containers ?? []).some(
      (c) => quantity(c.resources?.limits?.[LIMIT]) !== undefined,
    ) || diskEmptyDirs(pod).some((d) => d.sizeLimit !== undefined)
  );
}

function shownBytes(n: number): string {
  const mib = n / (1024 * 1024);
  return mib >= 1 ? `${mib.toFixed(1)}Mi` : `${Math.ceil(n / 1024)}Ki`;
}

/** Why the pod is to be evicted for what it takes of the disk; undefined when it is not. */
export function storageViolation(pod: Pod, use: StorageUse): string | undefined {
  for (const d of diskEmptyDirs(pod)) {
    const used = use.emptyDirs.get(d.name) ?? 0;
    if (d.sizeLimit !== undefined && used > d.sizeLimit) {
      return `emptyDir volume "${d.name}" holds ${shownBytes(used)}, more than its sizeLimit of ${d.shown}.`;
    }
  }
  let limits = 0;
  let allLimited = true;
  for (const c of pod.spec?.containers ?? []) {
    const shown = c.resources?.limits?.[LIMIT];
    const limit = quantity(shown);
    if (limit === undefined) {
      allLimited = false;
      continue;
    }
    limits += limit;
    const used = use.containers.get(c.name) ?? 0;
    if (used > limit) {
      return `Container ${c.name} took ${shownBytes(used)} of ephemeral storage, more than its limit of ${String(shown)}.`;
    }
  }
  if (!allLimited || (pod.spec?.containers ?? []).length === 0) return undefined;
  let total = 0;
  for (const n of use.containers.values()) total += n;
  for (const n of use.emptyDirs.values()) total += n;
  if (total > limits) {
    return `The pod took ${shownBytes(total)} of ephemeral storage, more than its containers' limits together (${shownBytes(limits)}).`;
  }
  return undefined;
}
