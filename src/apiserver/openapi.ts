import { createHash } from 'node:crypto';
import { RESOURCE_TYPES, type ResourceType } from '../api/resources.js';

/**
 * OpenAPI v3 documents, one per group version, describing each resource's paths and the
 * query parameters its operations take. kubectl reads them to learn that the server
 * validates fields itself (the `fieldValidation` parameter of PATCH); it then sends
 * `fieldValidation=Strict` instead of downloading schemas for client-side checks.
 *
 * The documents carry paths and operations only, no object schemas: clients that need
 * schemas (`kubectl explain`) get none yet, and kubectl then falls back to the patch
 * metadata compiled into it for strategic merge patches.
 */

function param(name: string, type = 'string'): unknown {
  return { name, in: 'query', schema: { type, uniqueItems: true } };
}

const WRITE_PARAMS = [param('dryRun'), param('fieldManager'), param('fieldValidation')];

function operations(rt: ResourceType, named: boolean): Record<string, unknown> {
  const gvk = { group: rt.group, version: rt.version, kind: rt.kind };
  const op = (action: string, params: unknown[] = []) => ({
    operationId: `${action}${rt.kind}`,
    parameters: params,
    responses: { '200': { description: 'OK' } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk,
  });
  if (!named) {
    return {
      get: op('list', [
        param('labelSelector'),
        param('fieldSelector'),
        param('resourceVersion'),
        param('watch', 'boolean'),
      ]),
      post: op('post', WRITE_PARAMS),
      delete: op('deletecollection', [param('labelSelector'), param('fieldSelector')]),
    };
  }
  return {
    get: op('get'),
    put: op('put', WRITE_PARAMS),
    patch: op('patch', [...WRITE_PARAMS, param('force', 'boolean')]),
    delete: op('delete', [
      param('gracePeriodSeconds', 'integer'),
      param('propagationPolicy'),
      param('dryRun'),
    ]),
  };
}

function basePath(rt: ResourceType): string {
  return rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
}

function groupVersionKey(rt: ResourceType): string {
  return basePath(rt).slice(1);
}

function buildDocument(types: ResourceType[]): unknown {
  const paths: Record<string, unknown> = {};
  for (const rt of types) {
    const scope = rt.namespaced ? `/namespaces/{namespace}/${rt.plural}` : `/${rt.plural}`;
    const collection = `${basePath(rt)}${scope}`;
    paths[collection] = operations(rt, false);
    paths[`${collection}/{name}`] = operations(rt, true);
    for (const sub of rt.subresources) {
      if (sub === 'status' || sub === 'scale')
        paths[`${collection}/{name}/${sub}`] = operations(rt, true);
    }
  }
  return {
    openapi: '3.0.0',
    info: { title: 'flyCes', version: 'v1.32.0' },
    paths,
    components: { schemas: {} },
  };
}

const documents = new Map<string, { body: unknown; hash: string }>();
for (const rt of RESOURCE_TYPES) {
  const key = groupVersionKey(rt);
  if (documents.has(key)) continue;
  const body = buildDocument(RESOURCE_TYPES.filter((t) => groupVersionKey(t) === key));
  const hash = createHash('sha512').update(JSON.stringify(body)).digest('hex').toUpperCase();
  documents.set(key, { body, hash });
}

/** The `/openapi/v3` index: where each group version's document is. */
export function openApiV3Index(): unknown {
  const paths: Record<string, unknown> = {};
  for (const [key, doc] of documents) {
    paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${doc.hash}` };
  }
  return { paths };
}

/** The document of one group version (`api/v1`, `apis/apps/v1`), or undefined. */
export function openApiV3Document(key: string): unknown | undefined {
  return documents.get(key)?.body;
}
