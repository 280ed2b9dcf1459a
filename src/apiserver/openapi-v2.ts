import type { IncomingMessage, ServerResponse } from 'node:http';
import YAML from 'yaml';
import { ApiError } from '../api/errors.js';
import { openApiHash, openApiV2Document } from './openapi.js';
import { WireWriter } from './protobuf/writer.js';

/**
 * `/openapi/v2`: the Swagger 2.0 document, as JSON or as the protocol buffers message
 * `openapi.v2.Document` of gnostic, the form client-go asks for. kubectl reads it before
 * `apply`, `create` or `replace` of a file whose kind is `List`: it checks a List's items
 * on its side whatever the server offers, and refuses the whole file when this document
 * cannot be had.
 *
 * The encoder knows the parts of gnostic's schema that our document uses (see openapi.ts);
 * a key it does not know is a fault, so a document grown without its encoding fails its
 * unit test instead of being served short.
 */

/** Served ahead of the Accept check, which would refuse the protobuf form. */
export const OPENAPI_V2_PATH = '/openapi/v2';

/** The media type Kubernetes answers with; client-go asks for its older `@v1.0` spelling. */
export const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';
const OPENAPI_V2_PROTOBUF_OLD = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';

type Json = Record<string, unknown>;
type Encode = (w: WireWriter, value: unknown) => void;

/** How a message's JSON keys map to its fields, and where its `x-` extensions go. */
interface MessageSpec {
  name: string;
  fields: Record<string, Encode>;
  vendorExtension?: number;
}

function asObject(value: unknown, what: string): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`OpenAPI v2: ${what} is not an object`);
  }
  return value as Json;
}

function encodeMessage(w: WireWriter, spec: MessageSpec, value: unknown): void {
  for (const [key, child] of Object.entries(asObject(value, spec.name))) {
    const encode = spec.fields[key];
    if (encode) encode(w, child);
    else if (key.startsWith('x-') && spec.vendorExtension) {
      namedAny(w, spec.vendorExtension, key, child);
    } else throw new Error(`OpenAPI v2: ${spec.name}.${key} has no protobuf encoding here`);
  }
}

/** A vendor extension: `NamedAny{name, value: Any{yaml}}`, the value as YAML text. */
function namedAny(w: WireWriter, field: number, name: string, value: unknown): void {
  w.message(field, (m) =>
    m.string(1, name).message(2, (any) => any.string(2, YAML.stringify(value))),
  );
}

function str(field: number): Encode {
  return (w, v) => w.string(field, String(v));
}

function bool(field: number): Encode {
  return (w, v) => w.bool(field, v === true);
}

function message(field: number, spec: MessageSpec): Encode {
  return (w, v) => w.message(field, (m) => encodeMessage(m, spec, v));
}

/** A JSON map as gnostic's repeated `Named*` pairs: `{name = 1, value = 2}` each. */
function namedMap(field: number, encodeValue: Encode): Encode {
  return (w, v) => {
    for (const [key, child] of Object.entries(asObject(v, `map of field ${field}`))) {
      w.message(field, (pair) => {
        pair.string(1, key);
        encodeValue(pair, child);
      });
    }
  };
}

const QUERY_PARAMETER: MessageSpec = {
  name: 'QueryParameterSubSchema',
  fields: {
    required: bool(1),
    in: str(2),
    description: str(3),
    name: str(4),
    type: str(6),
    format: str(7),
    uniqueItems: bool(20),
  },
  vendorExtension: 23,
};

/**
 * `ParametersItem{parameter: Parameter{non_body_parameter: NonBodyParameter{query_...}}}`:
 * only query parameters, the only kind the document has.
 */
const parameters: Encode = (w, v) => {
  if (!Array.isArray(v)) throw new Error('OpenAPI v2: Operation.parameters is not a list');
  for (const p of v) {
    const where = asObject(p, 'a parameter').in;
    if (where !== 'query') throw new Error(`OpenAPI v2: parameters in ${String(where)}`);
    w.message(8, (item) =>
      item.message(1, (param) =>
        param.message(2, (nonBody) =>
          nonBody.message(3, (q) => encodeMessage(q, QUERY_PARAMETER, p)),
        ),
      ),
    );
  }
};

const RESPONSE: MessageSpec = {
  name: 'Response',
  fields: { description: str(1) },
  vendorExtension: 5,
};

/** `Responses{response_code: NamedResponseValue{name, value: ResponseValue{response}}}`. */
const responses: Encode = (w, v) => {
  const responseValue: Encode = (pair, r) => pair.message(2, (rv) => message(1, RESPONSE)(rv, r));
  w.message(9, (rs) => namedMap(1, responseValue)(rs, v));
};

const OPERATION: MessageSpec = {
  name: 'Operation',
  fields: {
    summary: str(2),
    description: str(3),
    operationId: str(5),
    parameters,
    responses,
    deprecated: bool(11),
  },
  vendorExtension: 13,
};

const PATH_ITEM: MessageSpec = {
  name: 'PathItem',
  fields: {
    get: message(2, OPERATION),
    put: message(3, OPERATION),
    post: message(4, OPERATION),
    delete: message(5, OPERATION),
    options: message(6, OPERATION),
    head: message(7, OPERATION),
    patch: message(8, OPERATION),
  },
  vendorExtension: 10,
};

const INFO: MessageSpec = {
  name: 'Info',
  fields: { title: str(1), version: str(2), description: str(3) },
  vendorExtension: 7,
};

/** Definitions are `NamedSchema` pairs; the document has none yet, so only `{}` is encoded. */
const definitions: Encode = (w, v) => {
  const names = Object.keys(asObject(v, 'definitions'));
  if (names.length > 0) throw new Error(`OpenAPI v2: definitions (${names[0]}) are not encoded`);
  w.message(9, () => undefined);
};

const DOCUMENT: MessageSpec = {
  name: 'Document',
  fields: {
    swagger: str(1),
    info: message(2, INFO),
    paths: (w, v) => w.message(8, (paths) => namedMap(2, message(2, PATH_ITEM))(paths, v)),
    definitions,
  },
  vendorExtension: 16,
};

/** The document as gnostic's `openapi.v2.Document` in protocol buffers. */
export function encodeOpenApiV2(doc: Json): Uint8Array {
  const w = new WireWriter();
  encodeMessage(w, DOCUMENT, doc);
  return w.finish();
}

/**
 * Which form an `Accept` header asks for: the first acceptable media range by quality (then
 * by order), JSON for no header or a wildcard, undefined when nothing offered is acceptable.
 */
export function negotiateOpenApiV2(accept: string | undefined): 'json' | 'protobuf' | undefined {
  const ranges = (accept?.trim() ? accept : '*/*')
    .split(',')
    .map((part, order) => {
      const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
      const q = params.find((p) => p.startsWith('q='));
      return { type, q: q ? Number(q.slice(2)) : 1, order };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q || a.order - b.order);
  for (const { type } of ranges) {
    if (type === '*/*' || type === 'application/*' || type === 'application/json') return 'json';
    if (type === OPENAPI_V2_PROTOBUF || type === OPENAPI_V2_PROTOBUF_OLD) return 'protobuf';
  }
  return undefined;
}

interface Rendered {
  json: Buffer;
  protobuf: Buffer;
  etag: string;
}

let rendered: Rendered | undefined;

function render(): Rendered {
  if (rendered) return rendered;
  const doc = openApiV2Document();
  const json = Buffer.from(JSON.stringify(doc));
  const protobuf = Buffer.from(encodeOpenApiV2(doc));
  rendered = { json, protobuf, etag: `"${openApiHash(json.toString())}"` };
  return rendered;
}

/**
 * Answers `GET /openapi/v2` in the form the client accepts (an ApiError NotAcceptable when
 * none), with an ETag
 * that a later `If-None-Match` turns into 304. The document is built on first use.
 */
export function serveOpenApiV2(req: IncomingMessage, res: ServerResponse): void {
  const form = negotiateOpenApiV2(req.headers.accept);
  res.setHeader('Vary', 'Accept');
  if (!form) {
    throw new ApiError(
      'NotAcceptable',
      `only application/json and ${OPENAPI_V2_PROTOBUF} are served, not ${req.headers.accept}`,
    );
  }
  const { json, protobuf, etag } = render();
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, { ETag: etag });
    res.end();
    return;
  }
  const body = form === 'json' ? json : protobuf;
  res.writeHead(200, {
    'Content-Type': form === 'json' ? 'application/json' : OPENAPI_V2_PROTOBUF,
    'Content-Length': body.length,
    ETag: etag,
  });
  res.end(body);
}
