import type { KObject } from '../api/types.js';
import { controllerOf } from '../api/types.js';
import type { Informer } from '../client/informer.js';

/**
 * Informer indexes shared by the controllers. Informers are shared through the factory,
 * so each index has one name and one function; adding it twice is harmless.
 */

/** Objects by namespace. */
export const NAMESPACE_INDEX = 'namespace';
/** Objects by the uid of their controller owner reference. */
export const CONTROLLER_INDEX = 'controller-uid';
/** Objects without a controller owner reference, by namespace: candidates for adoption. */
export const ORPHAN_INDEX = 'orphans';
/** Objects by the uid of every owner reference they carry. */
export const OWNER_INDEX = 'owner-uid';

/** Adds the namespace, controller-uid and orphan indexes to an informer of namespaced objects. */
export function addWorkloadIndexes(informer: Informer<any>): void {
  informer.addIndex(NAMESPACE_INDEX, (obj: KObject) => [obj.metadata.namespace ?? '']);
  informer.addIndex(CONTROLLER_INDEX, (obj: KObject) => {
    const ref = controllerOf(obj);
    return ref ? [ref.uid] : [];
  });
  informer.addIndex(ORPHAN_INDEX, (obj: KObject) =>
    controllerOf(obj) ? [] : [obj.metadata.namespace ?? ''],
  );
}

/** Adds the owner-uid index used by the garbage collector. */
export function addOwnerIndex(informer: Informer<any>): void {
  informer.addIndex(OWNER_INDEX, (obj: KObject) =>
    (obj.metadata.ownerReferences ?? []).map((ref) => ref.uid),
  );
}
