import {
  ApiError,
  badRequest,
  conflict,
  invalid,
  type FieldError,
  type StatusObject,
} from '../api/errors.js';
import type { ResourceType } from '../api/resources.js';
import { nowTimestamp, type KObject } from '../api/types.js';
import { isDns1123Label, isDns1123Subdomain } from '../api/validation.js';
import type { Registry } from './registry.js';

/**
 * Binding pods to nodes: the `pods/binding` subresource Kubernetes defines, and a bulk
 * form of it that flyCes' own scheduler uses.
 *
 * The bulk form, `POST /flyces/v1/bindings`, takes a BindingList and binds each item as a
 * POST to that pod's binding subresource would: same checks, same authorization (create
 * pods/binding in the pod's namespace), same result, one Status per item in the order of
 * the items. One item's failure does not fail the others. It exists for speed: at
 * thousands of binds a second, the HTTP request of each bind cost the scheduler and the API
 * server more than the bind itself, while the binds of one request share a store commit.
 */

export const BULK_BINDINGS_PATH = '/flyces/v1/bindings';
/** Items one bulk request may carry. */
export const MAX_BULK_BINDINGS = 1000;

/** The answer to a successful bind. */
export const BOUND = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Success',
  code: 201,
} as const;

/** One item's outcome in a bulk answer. */
export type BindResult = StatusObject | typeof BOUND;

/**
 * Sets the pod's node exactly once, with its PodScheduled condition. Refused (Conflict)
 * when the pod is bound already, is being deleted, or is not the pod of the binding's uid.
 */
export async function bindPod(
  registry: Registry,
  pods: ResourceType,
  namespace: string,
  name: string,
  binding: KObject,
  dryRun = false,
): Promise<void> {
  const nodeName = binding?.target?.name;
  if (typeof nodeName !== 'string' || nodeName === '') {
    throw invalid('Binding', '', name, [{ field: 'target.name', type: 'Required' }]);
  }
  if (!isDns1123Subdomain(nodeName)) {
    throw invalid('Binding', '', name, [
      { field: 'target.name', type: 'Invalid', value: nodeName, detail: 'not a valid node name' },
    ]);
  }
  const precondition = binding.metadata?.resourceVersion;
  const write = async (pod: KObject) => {
    if (pod.spec.nodeName) {
      throw new ApiError(
        'Conflict',
        `pod ${name} is already assigned to node "${pod.spec.nodeName}"`,
        { name, kind: 'pods' },
      );
    }
    if (pod.metadata.deletionTimestamp) {
      throw new ApiError('Conflict', `pod ${name} is being deleted, cannot be assigned to a host`);
    }
    if (binding.metadata?.uid && binding.metadata.uid !== pod.metadata.uid) {
      throw conflict('pods', '', name);
    }
    pod.spec.nodeName = nodeName;
    pod.status ??= {};
    const conditions = (pod.status.conditions ?? []).filter(
      (c: { type: string }) => c.type !== 'PodScheduled',
    );
    conditions.push({
      type: 'PodScheduled',
      status: 'True',
      lastProbeTime: null,
      lastTransitionTime: nowTimestamp(),
    });
    pod.status.conditions = conditions;
    return pod;
  };
  await registry.mutate(pods, namespace, name, precondition, 'binding', write, { dryRun });
}

/** Whether the caller may bind this pod; a Forbidden error when not. */
export type BindAuthorizer = (namespace: string, name: string) => Promise<ApiError | undefined>;

/**
 * Binds every item of a bulk request (see above) at once; one Status per item, in order.
 * A body that is not a BindingList of at most MAX_BULK_BINDINGS items is refused whole
 * (BadRequest). `failed` hears of items that failed for a fault of the server, not of the
 * request, so that they are logged. With `dryRun` every item is checked and nothing written.
 */
export async function bindAll(
  registry: Registry,
  pods: ResourceType,
  body: unknown,
  authorize: BindAuthorizer,
  failed: (err: unknown, namespace: string, name: string) => void,
  dryRun = false,
): Promise<{ kind: string; apiVersion: string; items: BindResult[] }> {
  const items = (body as { items?: unknown } | undefined)?.items;
  if (!Array.isArray(items))
    throw badRequest('items: a BindingList with an items array is required');
  if (items.length > MAX_BULK_BINDINGS) {
    throw badRequest(
      `items: at most ${MAX_BULK_BINDINGS} bindings per request, not ${items.length}`,
    );
  }
  const results = await Promise.all(
    items.map(async (item: KObject, i): Promise<BindResult> => {
      const namespace = item?.metadata?.namespace;
      const name = item?.metadata?.name;
      try {
        if (typeof name !== 'string' || name === '') {
          throw invalid('Binding', '', '', [
            { field: `items[${i}].metadata.name`, type: 'Required' },
          ]);
        }
        if (typeof namespace !== 'string' || namespace === '') {
          throw invalid('Binding', '', name, [
            { field: `items[${i}].metadata.namespace`, type: 'Required' },
          ]);
        }
        const wrong = invalidNames(name, namespace, i);
        if (wrong.length > 0) throw invalid('Binding', '', name, wrong);
        const refused = await authorize(namespace, name);
        if (refused) throw refused;
        await bindPod(registry, pods, namespace, name, item, dryRun);
        return BOUND;
      } catch (err) {
        if (err instanceof ApiError) return err.toStatus();
        failed(err, String(namespace), String(name));
        return new ApiError(
          'InternalError',
          `Internal error occurred: ${(err as Error)?.message ?? err}`,
        ).toStatus();
      }
    }),
  );
  return { kind: 'BindingResultList', apiVersion: 'flyces.io/v1', items: results };
}

/**
 * A bulk item's name and namespace that no pod can have, as field errors: the
 * pods/NAME/binding path could not even carry some of them (a slash, `..`).
 */
function invalidNames(name: string, namespace: string, i: number): FieldError[] {
  const errors: FieldError[] = [];
  const at = `items[${i}].metadata`;
  if (!isDns1123Subdomain(name)) {
    errors.push({ field: `${at}.name`, type: 'Invalid', value: name, detail: 'not a pod name' });
  }
  if (!isDns1123Label(namespace)) {
    errors.push({
      field: `${at}.namespace`,
      type: 'Invalid',
      value: namespace,
      detail: 'not a namespace name',
    });
  }
  return errors;
}
