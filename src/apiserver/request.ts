import type { IncomingMessage } from 'node:http';
import YAML, { Lexer } from 'yaml';
import { ApiError, badRequest, pathNotFound } from '../api/errors.js';
import { byGroupResource, type ResourceType } from '../api/resources.js';
import { decodeKubernetesProtobuf, PROTOBUF_MEDIA_TYPE } from './protobuf/decode.js';

/**
 * Parsing of requests into what the handlers need: which resource, namespace, name and
 * subresource a path names, which verb the method and query make of it, and the body.
 */

export interface ResourceRequest {
  rt: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
  /** Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection. */
  verb: string;
  query: URLSearchParams;
}

/** Parses `/api/v1/...` and `/apis/<g>/<v>/...` resource paths; undefined for other paths. */
export function parseResourcePath(method: string, url: URL): ResourceRequest | undefined {
  let parts = url.pathname.split('/').filter((p) => p.length > 0);
  let group: string;
  if (parts[0] === 'api' && parts[1] === 'v1') {
    group = '';
    parts = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1];
    if (parts[2] !== 'v1') return undefined;
    parts = parts.slice(3);
  } else return undefined;

  let watchPath = false;
  if (parts[0] === 'watch') {
    watchPath = true;
    parts = parts.slice(1);
  }
  let namespace: string | undefined;
  if (parts[0] === 'namespaces' && parts.length >= 3) {
    const inner = byGroupResource.get(`${group}/${parts[2]}`);
    if (inner?.namespaced) {
      namespace = parts[1];
      parts = parts.slice(2);
    }
  }
  const rt = byGroupResource.get(`${group}/${parts[0]}`);
  if (!rt || parts.length > 3) return undefined;
  const [, name, subresource] = parts;
  if (subresource && !rt.subresources.includes(subresource)) return undefined;
  const query = url.searchParams;
  const watch = watchPath || query.get('watch') === 'true' || query.get('watch') === '1';
  const verb = verbFor(method, name !== undefined, watch);
  if (!verb)
    throw new ApiError(
      'MethodNotAllowed',
      `the server does not allow this method on the requested resource`,
    );
  if (rt.namespaced && !namespace && verb === 'create') {
    throw new ApiError(
      'MethodNotAllowed',
      'the server does not allow this method on the requested resource',
    );
  }
  if (rt.namespaced && !namespace && name !== undefined) {
    throw pathNotFound();
  }
  let decoded = name;
  try {
    decoded = name && decodeURIComponent(name);
  } catch {
    throw badRequest(`the object name in the path is not valid percent-encoding: ${name}`);
  }
  return { rt, namespace, name: decoded, subresource, verb, query };
}

function verbFor(method: string, named: boolean, watch: boolean): string | undefined {
  switch (method) {
    case 'GET':
      if (watch) return 'watch';
      return named ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return named ? 'update' : undefined;
    case 'PATCH':
      return named ? 'patch' : undefined;
    case 'DELETE':
      return named ? 'delete' : 'deletecollection';
    default:
      return undefined;
  }
}

/** The largest request body accepted, as in Kubernetes (3 MiB). */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

/**
 * Reads a request's body, refusing one past MAX_BODY_BYTES. Listens for 'data' and 'end'
 * rather than iterating the stream: an async iterator per request costs more than the
 * small bodies most requests carry.
 */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk);
      cleanup();
      // Stop reading; the error answer is written and the connection may then close.
      req.pause();
      reject(
        new ApiError(
          'RequestEntityTooLarge',
          `request body is larger than ${MAX_BODY_BYTES} bytes`,
        ),
      );
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(new Error('the client closed the request before its body was read'));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    if (req.readableEnded) return resolve(Buffer.alloc(0));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** Deepest nesting accepted in a body; real objects stay far below it. */
export const MAX_DEPTH = 100;

/** Refuses values nested deeper than MAX_DEPTH, which later stages could not walk safely. */
export function checkDepth(value: unknown): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > MAX_DEPTH)
      throw badRequest(`the request body is nested deeper than ${MAX_DEPTH} levels`);
    for (const child of Object.values(v as object)) stack.push([child, depth + 1]);
  }
}

/** Decodes a JSON or YAML body; an empty body is undefined. */
export function decodeBody(body: Buffer, contentType: string | undefined): unknown {
  const value = decodeText(body, contentType);
  checkDepth(value);
  return value;
}

function decodeText(body: Buffer, contentType: string | undefined): unknown {
  if (body.length === 0) return undefined;
  const type = (contentType ?? 'application/json').split(';')[0].trim();
  if (type === PROTOBUF_MEDIA_TYPE) return decodeKubernetesProtobuf(body, MAX_DEPTH);
  const text = body.toString('utf8');
  if (type !== 'application/json' && type !== 'application/yaml' && !type.endsWith('+json')) {
    throw new ApiError(
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (not ${type})`,
    );
  }
  if (type === 'application/yaml') checkYamlFlowDepth(text);
  try {
    if (type === 'application/yaml') {
      return YAML.parse(text, { maxAliasCount: 100 });
    }
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`the request body could not be decoded: ${(err as Error).message}`);
  }
}

/**
 * Refuses YAML whose flow collections (`[`, `{`) nest deeper than MAX_DEPTH before it is
 * parsed: the parser spends seconds and a gigabyte on a body of a million brackets before
 * it fails (a few such bodies at once ran the server out of memory). The lexer's tokens
 * tell brackets from the same characters inside scalars. Block nesting needs indentation,
 * which the body limit keeps shallow enough to parse.
 */
function checkYamlFlowDepth(text: string): void {
  let depth = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === '[' || token === '{') {
      if (++depth > MAX_DEPTH) {
        throw badRequest(`the request body is nested deeper than ${MAX_DEPTH} levels`);
      }
    } else if (token === ']' || token === '}') depth--;
  }
}

/** Whether the client asked for a server-side Table (`kubectl get`). */
export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept
    .split(',')
    .some((part) => /\bas=Table\b/.test(part) && /\bg=meta\.k8s\.io\b/.test(part));
}

/** Refuses requests that accept only encodings we do not produce (e.g. protobuf only). */
export function checkAcceptable(accept: string | undefined): void {
  if (!accept) return;
  const ok = accept
    .split(',')
    .some((part) => /application\/json|\*\/\*|application\/\*|application\/yaml/.test(part));
  if (!ok) throw new ApiError('NotAcceptable', `only application/json is served, not ${accept}`);
}
