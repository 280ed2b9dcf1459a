import type { ResourceType } from '../api/resources.js';
import type { KObject } from '../api/types.js';

/**
 * Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for, so the
 * columns match what Kubernetes prints for each kind.
 */

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export function parseIncludeObject(value: string | null): IncludeObject {
  if (value === 'None' || value === 'Object') return value;
  return 'Metadata';
}

function rowObject(obj: KObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined;
  if (include === 'Object') return obj;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export function toTable(
  rt: ResourceType,
  objects: KObject[],
  meta: { resourceVersion: string; continue?: string },
  include: IncludeObject,
  withColumns = true,
): unknown {
  const now = Date.now();
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: meta,
    columnDefinitions: withColumns
      ? rt.printer.columns.map((c) => ({
          name: c.name,
          type: c.type,
          format: c.format ?? '',
          description: c.description ?? '',
          priority: c.priority ?? 0,
        }))
      : [],
    rows: objects.map((obj) => ({
      cells: rt.printer.cells(obj, now),
      object: rowObject(obj, include),
    })),
  };
}
