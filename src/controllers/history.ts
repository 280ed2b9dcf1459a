import type { ControllerRevision } from '../api/apps-workloads.js';
import { defaultPodTemplate } from '../api/defaults.js';
import { byGroupResource } from '../api/resources.js';
import { controllerRef, type KObject, type PodTemplateSpec } from '../api/types.js';
import { isReason, type KubeClient } from '../client/rest.js';
import { deepEqual } from '../util/equal.js';
import { fnv32a, stableJson } from './deployment/hash.js';

/**
 * ControllerRevisions: the pod template history of DaemonSets and StatefulSets, one
 * immutable object per distinct template, numbered by `revision`. `kubectl rollout history`
 * lists them (by the workload's selector, then by controller reference) and `kubectl rollout
 * undo` applies a revision's `data` to the workload as a strategic merge patch, so `data`
 * holds the template with a `$patch: replace` directive, as Kubernetes stores it.
 */

export const CONTROLLER_REVISIONS = byGroupResource.get('apps/controllerrevisions')!;

/** The label naming a revision's hash, on the revision and on the pods made from it. */
export const REVISION_HASH_LABEL = 'controller-revision-hash';

// Characters that cannot spell words, as in Kubernetes' generated names.
const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** What a revision stores for a template: the patch that puts the template back. */
export function revisionData(template: PodTemplateSpec): unknown {
  return { spec: { template: { ...structuredClone(template), $patch: 'replace' } } };
}

/** The pod template stored in a revision, or undefined if its data has another shape. */
export function templateOfRevision(cr: ControllerRevision): PodTemplateSpec | undefined {
  const template = cr.data?.spec?.template;
  if (!template || typeof template !== 'object') return undefined;
  const copy = structuredClone(template);
  delete copy.$patch;
  return copy as PodTemplateSpec;
}

/** The hash naming a revision: FNV-1a of its data (and the collision count), without vowels. */
export function revisionHash(data: unknown, collisionCount?: number): string {
  let text = stableJson(data);
  if (collisionCount) text += `#${collisionCount}`;
  let n = fnv32a(text);
  let out = '';
  do {
    out = ALPHABET[n % ALPHABET.length] + out;
    n = Math.floor(n / ALPHABET.length);
  } while (n > 0);
  return out;
}

/** The highest revision number in use, 0 when there is none. */
export function maxRevision(revisions: ControllerRevision[]): number {
  return revisions.reduce((max, r) => Math.max(max, r.revision ?? 0), 0);
}

/**
 * The revisions to delete to keep at most `limit` beyond the live ones (those named in
 * `live`, by name or hash label), oldest revision number first.
 */
export function revisionsToPrune(
  revisions: ControllerRevision[],
  live: Set<string>,
  limit: number,
): ControllerRevision[] {
  const isLive = (r: ControllerRevision) =>
    live.has(r.metadata.name!) || live.has(r.metadata.labels?.[REVISION_HASH_LABEL] ?? '');
  const dead = revisions.filter((r) => !isLive(r)).sort((a, b) => a.revision - b.revision);
  return dead.slice(0, Math.max(0, dead.length - limit));
}

/** The workload a revision belongs to: what `ensureRevision` needs to know of it. */
export interface RevisionOwner extends KObject {
  spec: { template: PodTemplateSpec };
}

export interface EnsuredRevision {
  revision: ControllerRevision;
  /** The owner's collision count after any hash collision was stepped over. */
  collisionCount: number;
}

/**
 * Finds or makes the revision of the owner's current template. An existing revision with
 * the same data is reused; if it is not the newest it is renumbered to the next number, as
 * Kubernetes does when a template is rolled back. Otherwise a revision is created, named
 * `<owner>-<hash>`; a name taken by other data bumps the collision count and tries again.
 * `revisions` are the owner's revisions as the cache knows them.
 */
export async function ensureRevision(
  client: KubeClient,
  owner: RevisionOwner,
  kind: 'DaemonSet' | 'StatefulSet',
  revisions: ControllerRevision[],
  collisionCount: number,
): Promise<EnsuredRevision> {
  const data = revisionData(owner.spec.template);
  const next = maxRevision(revisions) + 1;
  const current = defaulted(owner.spec.template);
  const same = revisions
    .filter((r) => deepEqual(r.data, data) || sameDefaulted(r, current))
    .sort((a, b) => b.revision - a.revision)[0];
  if (same) {
    if (same.revision === next - 1) return { revision: same, collisionCount };
    const renumbered = await client.update<ControllerRevision>(CONTROLLER_REVISIONS, {
      ...same,
      revision: next,
    });
    return { revision: renumbered, collisionCount };
  }
  for (let attempt = 0; attempt < 5; attempt++, collisionCount++) {
    const cr = newRevision(owner, kind, data, next, collisionCount);
    try {
      const created = await client.create<ControllerRevision>(CONTROLLER_REVISIONS, cr);
      return { revision: created, collisionCount };
    } catch (err) {
      if (!isReason(err, 'AlreadyExists')) throw err;
    }
    const existing = await client.get<ControllerRevision>(
      CONTROLLER_REVISIONS,
      owner.metadata.namespace,
      cr.metadata.name!,
    );
    const ours = existing.metadata.ownerReferences?.some((r) => r.uid === owner.metadata.uid);
    // Our own write that the cache has not shown us yet.
    if (ours && deepEqual(existing.data, data)) return { revision: existing, collisionCount };
  }
  throw new Error(`could not find a free revision name for ${owner.metadata.name}`);
}

function defaulted(template: PodTemplateSpec): PodTemplateSpec {
  const copy = structuredClone(template);
  defaultPodTemplate(copy);
  return copy;
}

/**
 * Whether a revision holds `template` once both have the template defaults of today: a
 * revision written before flyCes gave templates a default lacks it, while the workload has
 * it from its next write on, and that alone must not make a new revision that rolls pods.
 */
function sameDefaulted(revision: ControllerRevision, template: PodTemplateSpec): boolean {
  const stored = templateOfRevision(revision);
  return stored !== undefined && deepEqual(defaulted(stored), template);
}

function newRevision(
  owner: RevisionOwner,
  kind: string,
  data: unknown,
  revision: number,
  collisionCount: number,
): ControllerRevision {
  const hash = revisionHash(data, collisionCount);
  const labels = { ...(owner.spec.template.metadata?.labels ?? {}), [REVISION_HASH_LABEL]: hash };
  const annotations = owner.metadata.annotations;
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      name: `${owner.metadata.name}-${hash}`,
      namespace: owner.metadata.namespace,
      labels,
      ...(annotations ? { annotations: { ...annotations } } : {}),
      ownerReferences: [controllerRef(owner, 'apps/v1', kind)],
    },
    data,
    revision,
  };
}

/** Deletes revisions beyond the history limit; a revision already gone is not an error. */
export async function pruneRevisions(
  client: KubeClient,
  victims: ControllerRevision[],
): Promise<void> {
  for (const cr of victims) {
    try {
      await client.delete(CONTROLLER_REVISIONS, cr.metadata.namespace, cr.metadata.name!);
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
  }
}
