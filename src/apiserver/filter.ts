import { badRequest } from '../api/errors.js';
import {
  fieldValue,
  parseFieldSelector,
  parseLabelSelector,
  Selector,
  SelectorError,
} from '../api/labels.js';
import type { KObject } from '../api/types.js';
import type { ResourceRequest } from './request.js';

/** Field and label selectors of a request, checked against what the resource supports. */
export interface Filter {
  namespace?: string;
  labels: Selector;
  fields: Selector;
}

export function parseFilter(rr: ResourceRequest): Filter {
  try {
    const labels = parseLabelSelector(rr.query.get('labelSelector'));
    const fields = parseFieldSelector(rr.query.get('fieldSelector'));
    const allowed = new Set([
      'metadata.name',
      'metadata.namespace',
      ...(rr.rt.selectableFields ?? []),
    ]);
    for (const req of fields.requirements) {
      if (!allowed.has(req.key)) throw badRequest(`field label not supported: ${req.key}`);
    }
    return { namespace: rr.namespace, labels, fields };
  } catch (err) {
    if (err instanceof SelectorError) throw badRequest(err.message);
    throw err;
  }
}

export function matchesFilter(obj: KObject, filter: Filter): boolean {
  if (filter.namespace && obj.metadata.namespace !== filter.namespace) return false;
  if (!filter.labels.isEmpty() && !filter.labels.matches(obj.metadata.labels ?? {})) return false;
  if (!filter.fields.isEmpty() && !filter.fields.matches((path) => fieldValue(obj, path) ?? ''))
    return false;
  return true;
}
