import { createHash } from 'node:crypto';
import { RESOURCE_TYPES, type ResourceType } from '../api/resources.js';

/**
 * The OpenAPI documents: v3, one per group version, and v2 (`/openapi/v2`), one for the
 * whole server. Both describe each resource's paths and the query parameters its
 * operations take. kubectl reads v3 to learn that the server validates fields itself (the
 * `fieldValidation` parameter of PATCH); it then sends `fieldValidation=Strict` instead of
 * checking fields itself. For a file of kind `List` it always checks on its side first,
 * against v2 (see openapi-v2.ts), and refuses the file when v2 cannot be read.
 *
 * The documents carry paths and operations only, no object schemas: clients that need
 * schemas (`kubectl explain`) get none yet, and kubectl then falls back to the patch
 * metadata compiled into it for strategic merge patches. With no schema in v2, kubectl's
 * check of a List's items passes them all, and misspelt fields are refused by the server,
 * item by item, as it applies them: the items before the misspelt one are written, where
 * Kubernetes refuses the whole file before writing any.
 */

/** Which OpenAPI version a document follows; a parameter's type sits differently in each. */
type Flavour = 'v2' | 'v3';

function param(flavour: Flavour, name: string, type = 'string'): unknown {
  if (flavour === 'v2') return { name, in: 'query', type, uniqueItems: true };
  return { name, in: 'query', schema: { type, uniqueItems: true } };
}

function operations(rt: ResourceType, named: boolean, flavour: Flavour): Record<string, unknown> {
  const gvk = { group: rt.group, version: rt.version, kind: rt.kind };
  const p = (name: string, type?: string) => param(flavour, name, type);
  const writeParams = [p('dryRun'), p('fieldManager'), p('fieldValidation')];
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
        p('labelSelector'),
        p('fieldSelector'),
        p('resourceVersion'),
        p('watch', 'boolean'),
      ]),
      post: op('post', writeParams),
      delete: op('deletecollection', [p('labelSelector'), p('fieldSelector')]),
    };
  }
  return {
    get: op('get'),
    put: op('put', writeParams),
    patch: op('patch', [...writeParams, p('force', 'boolean')]),
    delete: op('delete', [p('gracePeriodSeconds', 'integer'), p('propagationPolicy'), p('dryRun')]),
  };
}

function basePath(rt: ResourceType): string {
  return rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
}

function groupVersionKey(rt: ResourceType): string {
  return basePath(rt).slice(1);
}

function buildPaths(types: ResourceType[], flavour: Flavour): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const rt of types) {
    const scope = rt.namespaced ? `/namespaces/{namespace}/${rt.plural}` : `/${rt.plural}`;
    const collection = `${basePath(rt)}${scope}`;
    paths[collection] = operations(rt, false, flavour);
    paths[`${collection}/{name}`] = operations(rt, true, flavour);
    for (const sub of rt.subresources) {
      if (sub === 'status' || sub === 'scale')
        paths[`${collection}/{name}/${sub}`] = operations(rt, true, flavour);
    }
  }
  return paths;
}

const INFO = { title: 'flyCes', version: 'v1.32.0' };

function buildDocument(types: ResourceType[]): unknown {
  return {
    openapi: '3.0.0',
    info: INFO,
    paths: buildPaths(types, 'v3'),
    components: { schemas: {} },
  };
}

/** An upper-case hex SHA-512, as Kubernetes uses for OpenAPI hashes and ETags. */
export function openApiHash(text: string): string {
  return createHash('sha512').update(text).digest('hex').toUpperCase();
}

const documents = new Map<string, { body: unknown; hash: string }>();
for (const rt of RESOURCE_TYPES) {
  const key = groupVersionKey(rt);
  if (documents.has(key)) continue;
  const body = buildDocument(RESOURCE_TYPES.filter((t) => groupVersionKey(t) === key));
  documents.set(key, { body, hash: openApiHash(JSON.stringify(body)) });
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

/**
 * The Swagger 2.0 document of `/openapi/v2`: every served type's paths in one document, and
 * no definitions (see above). Built anew on each call; the server keeps the one it serves.
 */
export function openApiV2Document(types: ResourceType[] = RESOURCE_TYPES): Record<string, unknown> {
  return { swagger: '2.0', info: INFO, paths: buildPaths(types, 'v2'), definitions: {} };
}
