import { defaultPodTemplate } from '../../api/defaults.js';
import type { PodTemplateSpec } from '../../api/types.js';
import { deepEqual } from '../../util/equal.js';

/** The label (and selector key) that ties a ReplicaSet and its pods to one template. */
export const TEMPLATE_HASH_LABEL = 'pod-template-hash';

// Characters that cannot spell words, as in Kubernetes' generated names.
const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** JSON with object keys sorted, so equal templates always serialize the same way. */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
}

/** 32-bit FNV-1a over the UTF-8 bytes of `text`. */
export function fnv32a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/**
 * The pod-template-hash of a Deployment's template: FNV-1a of its key-sorted JSON (with
 * any pod-template-hash label left out) and the collision count, written in a 27-letter
 * alphabet without vowels. Stable across processes and key order.
 */
export function templateHash(template: PodTemplateSpec, collisionCount?: number): string {
  let text = stableJson(withoutHash(template));
  if (collisionCount) text += `#${collisionCount}`;
  let n = fnv32a(text);
  let out = '';
  do {
    out = ALPHABET[n % ALPHABET.length] + out;
    n = Math.floor(n / ALPHABET.length);
  } while (n > 0);
  return out;
}

/**
 * A copy of a template without the pod-template-hash label, and without what a client may
 * write or leave out for the same meaning, as kubectl does when it copies a ReplicaSet's
 * template back (`rollout undo`): a container's `resources: {}`, and a resourceFieldRef's
 * `divisor: "0"` (Go's empty Quantity, which means no divisor). The copy has the template
 * defaults of today: a Deployment or ReplicaSet stored before flyCes gave templates a
 * default has not got it until its next write, and that must not make it another template.
 */
export function withoutHash(template: PodTemplateSpec): PodTemplateSpec {
  const copy = structuredClone(template);
  defaultPodTemplate(copy);
  if (copy.metadata?.labels) {
    delete copy.metadata.labels[TEMPLATE_HASH_LABEL];
    if (Object.keys(copy.metadata.labels).length === 0) delete copy.metadata.labels;
  }
  const spec = copy.spec as { containers?: unknown; initContainers?: unknown } | undefined;
  for (const list of [spec?.containers, spec?.initContainers]) {
    if (!Array.isArray(list)) continue;
    for (const c of list as ContainerShape[]) {
      if (isEmptyObject(c?.resources)) delete c.resources;
      if (Array.isArray(c?.env))
        c.env.forEach((e) => dropZeroDivisor(e?.valueFrom?.resourceFieldRef));
    }
  }
  return copy;
}

interface ContainerShape {
  resources?: object;
  env?: { valueFrom?: { resourceFieldRef?: { divisor?: unknown } } }[];
}

function dropZeroDivisor(ref: { divisor?: unknown } | undefined): void {
  if (ref && (ref.divisor === '0' || ref.divisor === 0)) delete ref.divisor;
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.keys(value).length === 0;
}

/** Whether two templates are equal once their pod-template-hash labels are ignored. */
export function equalIgnoringHash(a: PodTemplateSpec, b: PodTemplateSpec): boolean {
  return deepEqual(withoutHash(a), withoutHash(b));
}
