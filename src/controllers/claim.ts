import type { Selector } from '../api/labels.js';
import { byGroupResource } from '../api/resources.js';
import {
  controllerOf,
  objectKey,
  type KObject,
  type OwnerReference,
  type Pod,
} from '../api/types.js';
import { isReason, type KubeClient } from '../client/rest.js';
import type { Logger } from '../log.js';

const PODS = byGroupResource.get('/pods')!;

/** Who claims pods, and which of the pods its selector matches it will take. */
export interface Claimant {
  owner: KObject;
  /** The controller reference the owner puts on its pods. */
  ref: OwnerReference;
  selector: Selector;
  /** Further test a pod must pass to belong (a StatefulSet takes only `<set>-<n>` names). */
  accepts?: (pod: Pod) => boolean;
}

/**
 * The pods an owner controls after reconciling ownership with its selector, as Kubernetes
 * controllers do: its pods that still match stay, its pods that no longer match are
 * released (their controller reference removed), and matching orphans are adopted (unless
 * the owner is being deleted). `pods` are the candidates, typically the owner's namespace.
 * Writes may race other writers; a pod that went away is skipped, other failures throw.
 */
export async function claimPods(
  client: KubeClient,
  claimant: Claimant,
  pods: Pod[],
  log: Logger,
): Promise<Pod[]> {
  const { owner, selector } = claimant;
  const belongs = (pod: Pod) =>
    selector.matches(pod.metadata.labels ?? {}) && (claimant.accepts?.(pod) ?? true);
  const owned: Pod[] = [];
  for (const pod of pods) {
    const ref = controllerOf(pod);
    if (ref) {
      if (ref.uid !== owner.metadata.uid) continue;
      if (belongs(pod)) owned.push(pod);
      else if (!pod.metadata.deletionTimestamp) await setRefs(client, pod, release(pod, owner));
      continue;
    }
    if (!belongs(pod) || pod.metadata.deletionTimestamp || owner.metadata.deletionTimestamp) {
      continue;
    }
    const adopted = await setRefs(client, pod, [
      ...(pod.metadata.ownerReferences ?? []),
      claimant.ref,
    ]);
    if (!adopted) continue;
    owned.push(adopted);
    log.info({ owner: objectKey(owner), pod: objectKey(pod) }, 'adopted pod');
  }
  return owned;
}

function release(pod: Pod, owner: KObject): OwnerReference[] | undefined {
  const refs = (pod.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid);
  return refs.length ? refs : undefined;
}

async function setRefs(
  client: KubeClient,
  pod: Pod,
  ownerReferences: OwnerReference[] | undefined,
): Promise<Pod | undefined> {
  try {
    return await client.update<Pod>(PODS, {
      ...pod,
      metadata: { ...pod.metadata, ownerReferences },
    });
  } catch (err) {
    if (isReason(err, 'NotFound')) return undefined;
    throw err;
  }
}
