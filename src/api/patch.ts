import { ApiError } from './errors.js';

/**
 * The three patch formats of the Kubernetes API: JSON patch (RFC 6902), JSON merge patch
 * (RFC 7386) and strategic merge patch, which merges lists of objects by a key field
 * (containers by name, ports by containerPort) instead of replacing them. Every function
 * returns a new object; its inputs are left untouched.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** Keys that would reach an object's prototype if assigned; no API object has them. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function checkKey(key: string): void {
  if (FORBIDDEN_KEYS.has(key))
    throw new ApiError('BadRequest', `invalid field name ${JSON.stringify(key)} in patch`);
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}

/** RFC 7386: objects merge recursively, null deletes, everything else replaces. */
export function mergePatch(target: unknown, patch: unknown): any {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    checkKey(key);
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

interface JsonPatchOp {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new ApiError('BadRequest', `invalid JSON pointer ${pointer}`);
  const parts = pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  parts.forEach(checkKey);
  return parts;
}

function resolveParent(doc: Json, parts: string[], path: string): [Json, string] {
  let cur: any = doc;
  for (const part of parts.slice(0, -1)) {
    cur = Array.isArray(cur) ? cur[Number(part)] : isObject(cur) ? cur[part] : undefined;
    if (cur === undefined) throw new ApiError('Invalid', `path ${path} does not exist`);
  }
  return [cur, parts[parts.length - 1]];
}

function arrayIndex(arr: Json[], token: string, path: string, forInsert: boolean): number {
  if (forInsert && token === '-') return arr.length;
  const i = Number(token);
  const max = forInsert ? arr.length : arr.length - 1;
  if (!/^\d+$/.test(token) || i > max) {
    throw new ApiError('Invalid', `index ${token} out of range in path ${path}`);
  }
  return i;
}

function getAt(doc: Json, path: string): Json {
  const parts = parsePointer(path);
  if (parts.length === 0) return doc;
  const [parent, last] = resolveParent(doc, parts, path);
  const value = Array.isArray(parent)
    ? parent[arrayIndex(parent, last, path, false)]
    : isObject(parent)
      ? parent[last]
      : undefined;
  if (value === undefined) throw new ApiError('Invalid', `path ${path} does not exist`);
  return value;
}

function removeAt(doc: Json, path: string): Json {
  const [parent, last] = resolveParent(doc, parsePointer(path), path);
  if (Array.isArray(parent)) return parent.splice(arrayIndex(parent, last, path, false), 1)[0];
  if (!isObject(parent) || !(last in parent)) {
    throw new ApiError('Invalid', `unable to remove nonexistent key ${last} at ${path}`);
  }
  const value = parent[last];
  delete parent[last];
  return value;
}

function addAt(doc: Json, path: string, value: Json, replace: boolean): Json {
  const parts = parsePointer(path);
  if (parts.length === 0) return clone(value);
  const [parent, last] = resolveParent(doc, parts, path);
  if (Array.isArray(parent)) {
    const i = arrayIndex(parent, last, path, !replace);
    parent.splice(i, replace ? 1 : 0, clone(value));
  } else if (isObject(parent)) {
    if (replace && !(last in parent)) {
      throw new ApiError('Invalid', `unable to replace nonexistent key ${last} at ${path}`);
    }
    parent[last] = clone(value);
  } else throw new ApiError('Invalid', `path ${path} does not exist`);
  return doc;
}

const MAX_OPERATIONS = 10_000;
/** Bytes `copy` operations may duplicate in one patch, so a small patch cannot build a huge object. */
const MAX_COPIED_BYTES = 3 * 1024 * 1024;

/** RFC 6902: applies the operations in order; a failed `test` aborts the whole patch. */
export function jsonPatch(target: unknown, ops: unknown): any {
  if (!Array.isArray(ops))
    throw new ApiError('BadRequest', 'a JSON patch must be a list of operations');
  if (ops.length > MAX_OPERATIONS) {
    throw new ApiError(
      'RequestEntityTooLarge',
      `a JSON patch may have at most ${MAX_OPERATIONS} operations`,
    );
  }
  let doc = clone(target) as Json;
  let copied = 0;
  for (const raw of ops as JsonPatchOp[]) {
    if (!isObject(raw as unknown) || typeof raw.path !== 'string') {
      throw new ApiError('BadRequest', `invalid JSON patch operation ${JSON.stringify(raw)}`);
    }
    const { op, path } = raw;
    if (op === 'add') doc = addAt(doc, path, raw.value as Json, false);
    else if (op === 'replace') doc = addAt(doc, path, raw.value as Json, true);
    else if (op === 'remove') removeAt(doc, path);
    else if (op === 'test') {
      if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(raw.value)) {
        throw new ApiError('Invalid', `test operation failed at ${path}`);
      }
    } else if (op === 'move' || op === 'copy') {
      if (typeof raw.from !== 'string') throw new ApiError('BadRequest', `${op} needs "from"`);
      if (op === 'copy') {
        copied += JSON.stringify(getAt(doc, raw.from)).length;
        if (copied > MAX_COPIED_BYTES) {
          throw new ApiError(
            'RequestEntityTooLarge',
            `the JSON patch copies more than ${MAX_COPIED_BYTES} bytes`,
          );
        }
      }
      const value = op === 'move' ? removeAt(doc, raw.from) : clone(getAt(doc, raw.from));
      doc = addAt(doc, path, value, false);
    } else throw new ApiError('BadRequest', `unknown JSON patch operation ${JSON.stringify(op)}`);
  }
  return doc;
}

/**
 * Merge keys of lists that strategic merge patch merges element-wise, by field name.
 * Lists not named here are replaced whole, as for types without patch metadata.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  envFrom: '',
  ports: 'containerPort',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  imagePullSecrets: 'name',
  conditions: 'type',
  ownerReferences: 'uid',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
  addresses: 'type',
  taints: 'key',
};

/**
 * The merge key of list `key` inside the object held by field `parent` ('' at the top).
 * `ports` is the one name with two meanings: a Service's `spec.ports` merge by port, a
 * container's by containerPort, and an EndpointSlice's top-level list is replaced whole.
 */
function mergeKeyOf(key: string, parent: string): string | undefined {
  if (key !== 'ports') return MERGE_KEYS[key];
  if (parent === 'spec') return 'port';
  return parent === '' ? undefined : MERGE_KEYS.ports;
}

/** Lists of scalars that strategic merge treats as sets. */
const SET_LISTS = new Set(['finalizers']);

const DIRECTIVE = '$patch';
const ORDER_PREFIX = '$setElementOrder/';
const DELETE_PRIMITIVE = '$deleteFromPrimitiveList/';
const RETAIN_KEYS = '$retainKeys';

/** Applies a strategic merge patch as `kubectl apply` and `kubectl patch` send them. */
export function strategicMergePatch(target: unknown, patch: unknown): any {
  if (!isObject(patch)) {
    throw new ApiError('BadRequest', 'a strategic merge patch must be a JSON object');
  }
  return mergeObject(isObject(target) ? target : {}, patch, '');
}

/** Merges `patch` into `target`, the value of field `parent` ('' for the whole object). */
function mergeObject(target: JsonObject, patch: JsonObject, parent: string): Json {
  const directive = patch[DIRECTIVE];
  if (
    directive !== undefined &&
    directive !== 'replace' &&
    directive !== 'delete' &&
    directive !== 'merge'
  ) {
    throw new ApiError(
      'BadRequest',
      `unknown patch directive $patch: ${JSON.stringify(directive)}`,
    );
  }
  if (directive === 'replace') {
    const rest = { ...patch };
    delete rest[DIRECTIVE];
    return clone(rest);
  }
  if (directive === 'delete') return null;
  const result: JsonObject = { ...target };
  const retain = patch[RETAIN_KEYS];
  if (retain !== undefined) {
    checkRetainKeys(retain, patch);
    for (const key of Object.keys(result))
      if (!(retain as string[]).includes(key)) delete result[key];
  }
  for (const [key, value] of Object.entries(patch)) {
    checkKey(key);
    if (key === DIRECTIVE || key === RETAIN_KEYS || key.startsWith(ORDER_PREFIX)) continue;
    if (key.startsWith(DELETE_PRIMITIVE)) {
      const field = key.slice(DELETE_PRIMITIVE.length);
      const drop = new Set((Array.isArray(value) ? value : []).map((v) => JSON.stringify(v)));
      const cur = result[field];
      if (Array.isArray(cur)) result[field] = cur.filter((v) => !drop.has(JSON.stringify(v)));
      continue;
    }
    if (value === null) {
      delete result[key];
      continue;
    }
    const merged = mergeField(key, result[key], value, parent);
    // A map patched with `$patch: delete` goes away with its key.
    if (merged === null) delete result[key];
    else result[key] = merged;
  }
  for (const [key, order] of Object.entries(patch)) {
    if (!key.startsWith(ORDER_PREFIX) || !Array.isArray(order)) continue;
    const field = key.slice(ORDER_PREFIX.length);
    const list = result[field];
    if (Array.isArray(list)) result[field] = applyOrder(list, order, mergeKeyOf(field, parent));
  }
  return result;
}

/** `$retainKeys` must list, as strings, every field the same patch map sets. */
function checkRetainKeys(retain: Json, patch: JsonObject): void {
  if (!Array.isArray(retain) || retain.some((k) => typeof k !== 'string')) {
    throw new ApiError('BadRequest', '$retainKeys must be a list of field names');
  }
  for (const key of Object.keys(patch)) {
    if (key.startsWith('$') || retain.includes(key)) continue;
    throw new ApiError(
      'BadRequest',
      `$retainKeys does not list ${JSON.stringify(key)}, which the patch sets`,
    );
  }
}

function mergeField(key: string, current: Json | undefined, value: Json, parent: string): Json {
  if (isObject(value)) {
    const merged = mergeObject(isObject(current) ? current : {}, value, key);
    return merged;
  }
  if (!Array.isArray(value)) return clone(value);
  const mergeKey = mergeKeyOf(key, parent);
  if (mergeKey) return mergeList(Array.isArray(current) ? current : [], value, mergeKey, key);
  if (SET_LISTS.has(key) && Array.isArray(current)) {
    const seen = new Set(current.map((v) => JSON.stringify(v)));
    return [...current, ...value.filter((v) => !seen.has(JSON.stringify(v)))];
  }
  return clone(value);
}

function mergeList(current: Json[], patch: Json[], mergeKey: string, key: string): Json[] {
  if (patch.some((el) => isObject(el) && el[DIRECTIVE] === 'replace' && !(mergeKey in el))) {
    return patch.filter((el) => !(isObject(el) && el[DIRECTIVE] === 'replace'));
  }
  const result = current.map((el) => clone(el));
  for (const el of patch) {
    if (!isObject(el) || !(mergeKey in el)) {
      result.push(clone(el));
      continue;
    }
    const i = result.findIndex((cur) => isObject(cur) && cur[mergeKey] === el[mergeKey]);
    if (el[DIRECTIVE] === 'delete') {
      if (i >= 0) result.splice(i, 1);
    } else if (i >= 0) {
      result[i] = mergeObject(result[i] as JsonObject, el, key);
    } else {
      result.push(mergeObject({}, el, key));
    }
  }
  return result;
}

/** Orders a merged list by `$setElementOrder`; elements not named keep their place after. */
function applyOrder(list: Json[], order: Json[], mergeKey: string | undefined): Json[] {
  const id = (v: Json) => JSON.stringify(mergeKey && isObject(v) ? v[mergeKey] : v);
  const rank = new Map(order.map((v, i) => [id(v), i]));
  const ranked = list.filter((v) => rank.has(id(v)));
  ranked.sort((a, b) => rank.get(id(a))! - rank.get(id(b))!);
  return [...ranked, ...list.filter((v) => !rank.has(id(v)))];
}
