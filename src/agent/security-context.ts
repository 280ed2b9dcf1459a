import type { Container, Pod } from '../api/types.js';
import type { SecurityOptions } from '../runtime/security.js';

/**
 * The securityContext a container runs with: the pod's (user, group, non-root, groups
 * with its fsGroup, seccomp) overlaid by the container's own, and the node's policy on
 * privilege, which also covers the host namespaces (hostNetwork, hostPID, hostIPC). Throws
 * with the reason when the pod asks for something this node does not allow.
 */
export function securityOptions(pod: Pod, c: Container, allowPrivileged: boolean): SecurityOptions {
  const podSec = (pod.spec.securityContext ?? {}) as Record<string, any>;
  const sec = (c.securityContext ?? {}) as Record<string, any>;
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (pod.spec[field] && !allowPrivileged) {
      throw new Error(`host namespaces are not allowed on this node (${field})`);
    }
  }
  if (sec.privileged && !allowPrivileged) {
    throw new Error('privileged containers are not allowed on this node');
  }
  const pick = <T>(field: string): T | undefined => sec[field] ?? podSec[field];
  const options: SecurityOptions = {
    runAsUser: pick<number>('runAsUser'),
    runAsGroup: pick<number>('runAsGroup'),
    runAsNonRoot: pick<boolean>('runAsNonRoot'),
    supplementalGroups: supplementalGroups(podSec),
    readOnlyRootFilesystem: sec.readOnlyRootFilesystem,
    privileged: sec.privileged,
    allowPrivilegeEscalation: sec.allowPrivilegeEscalation,
    capabilities: sec.capabilities,
    seccompProfile: pick('seccompProfile'),
    hostPID: pod.spec.hostPID === true || undefined,
    hostIPC: pod.spec.hostIPC === true || undefined,
  };
  for (const key of Object.keys(options) as (keyof SecurityOptions)[]) {
    if (options[key] === undefined) delete options[key];
  }
  return options;
}

/** The pod's supplemental groups, and its fsGroup, which owns its volumes (see volumes.ts). */
function supplementalGroups(podSec: Record<string, any>): number[] | undefined {
  const groups = Array.isArray(podSec.supplementalGroups) ? [...podSec.supplementalGroups] : [];
  const fsGroup = podSec.fsGroup;
  if (Number.isInteger(fsGroup) && fsGroup >= 0 && !groups.includes(fsGroup)) groups.push(fsGroup);
  return groups.length > 0 ? groups : podSec.supplementalGroups;
}
