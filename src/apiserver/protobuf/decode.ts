import { ApiError, badRequest } from '../../api/errors.js';
import { buildSchema, isScalar, type FieldSpec } from './schema.js';
import { CORE } from './tables-core.js';
import { META } from './tables-meta.js';
import { APPS, BATCH, SCHEDULING, STATEFULSET } from './tables-workloads.js';
import { toInt32, toInt64, WireError, WireReader, WireType } from './wire.js';

/**
 * Decoding of request bodies in Kubernetes' protobuf encoding (what kubectl's typed
 * `create` commands send) into the JSON form of the same object, so everything after the
 * body parser sees one format. The body is the magic `k8s\0`, then a runtime.Unknown
 * whose typeMeta names the kind and whose raw bytes are the object's message.
 *
 * Only the kinds in ROOT_MESSAGES, and DeleteOptions, are decoded, with the fields of their
 * tables. A field the tables do not know is dropped only when it holds its zero value (Go's
 * encoder writes empty strings, zeros and empty messages of every non-pointer field); any
 * other unknown field refuses the body with 415, naming it, rather than losing what it
 * says. Responses stay JSON, which kubectl accepts as its second choice.
 */

export const PROTOBUF_MEDIA_TYPE = 'application/vnd.kubernetes.protobuf';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

const SCHEMA = buildSchema(META, CORE, APPS, STATEFULSET, BATCH, SCHEDULING);

/** `apiVersion/kind` of each object kind decoded, and its root message. */
const ROOT_MESSAGES: Record<string, string> = {
  'v1/Namespace': 'Namespace',
  'v1/ConfigMap': 'ConfigMap',
  'v1/Secret': 'Secret',
  'v1/ServiceAccount': 'ServiceAccount',
  'v1/Service': 'Service',
  'v1/Pod': 'Pod',
  'apps/v1/Deployment': 'Deployment',
  'apps/v1/ReplicaSet': 'ReplicaSet',
  'apps/v1/DaemonSet': 'DaemonSet',
  'apps/v1/StatefulSet': 'StatefulSet',
  'batch/v1/Job': 'Job',
  'batch/v1/CronJob': 'CronJob',
  'scheduling.k8s.io/v1/PriorityClass': 'PriorityClass',
};

type JsonObject = Record<string, unknown>;

/**
 * Decodes a protobuf request body into the object's JSON form. Malformed input is a 400;
 * a kind or field this server cannot decode is a 415 that asks for JSON instead.
 * `maxDepth` bounds nesting as the JSON parser's depth check does.
 */
export function decodeKubernetesProtobuf(body: Uint8Array, maxDepth: number): JsonObject {
  try {
    return decodeEnvelope(body, maxDepth);
  } catch (err) {
    if (err instanceof WireError) {
      throw badRequest(`the protobuf request body could not be decoded: ${err.message}`);
    }
    throw err;
  }
}

function decodeEnvelope(body: Uint8Array, maxDepth: number): JsonObject {
  if (body.length < MAGIC.length || !MAGIC.equals(body.subarray(0, MAGIC.length))) {
    throw new WireError('it does not start with the Kubernetes protobuf prefix "k8s\\0"');
  }
  const unknown = new WireReader(body.subarray(MAGIC.length));
  let apiVersion = '';
  let kind = '';
  let raw: Uint8Array = new Uint8Array(0);
  let encoding = '';
  let contentType = '';
  for (let f = unknown.tag(); f; f = unknown.tag()) {
    if (f.number === 1 && f.wireType === WireType.Bytes) {
      ({ apiVersion, kind } = decodeTypeMeta(unknown.bytes()));
    } else if (f.number === 2 && f.wireType === WireType.Bytes) raw = unknown.bytes();
    else if (f.number === 3 && f.wireType === WireType.Bytes) encoding = text(unknown.bytes());
    else if (f.number === 4 && f.wireType === WireType.Bytes) contentType = text(unknown.bytes());
    else if (!unknown.skip(f.wireType).zero) throw unknownField('runtime.Unknown', f.number, '');
  }
  if (encoding !== '' || (contentType !== '' && contentType !== PROTOBUF_MEDIA_TYPE)) {
    throw new ApiError(
      'UnsupportedMediaType',
      `protobuf bodies with content encoding "${encoding}" and type "${contentType}" are not decoded; send the object as JSON (application/json)`,
    );
  }
  // DeleteOptions belongs to every group version: a client names the resource's own.
  const root =
    ROOT_MESSAGES[`${apiVersion}/${kind}`] ?? (kind === 'DeleteOptions' ? kind : undefined);
  if (!root) {
    throw new ApiError(
      'UnsupportedMediaType',
      `protobuf bodies of kind "${kind}" (apiVersion "${apiVersion}") are not decoded by this server; send the object as JSON (application/json)`,
    );
  }
  const object = new Decoder(maxDepth).message(root, raw, '', 1, {});
  return { apiVersion, kind, ...object };
}

function decodeTypeMeta(buf: Uint8Array): { apiVersion: string; kind: string } {
  const r = new WireReader(buf);
  const out = { apiVersion: '', kind: '' };
  for (let f = r.tag(); f; f = r.tag()) {
    if (f.number === 1 && f.wireType === WireType.Bytes) out.apiVersion = text(r.bytes());
    else if (f.number === 2 && f.wireType === WireType.Bytes) out.kind = text(r.bytes());
    else if (!r.skip(f.wireType).zero) throw unknownField('runtime.TypeMeta', f.number, '');
  }
  return out;
}

function unknownField(message: string, number: number, path: string): ApiError {
  const where = path === '' ? '' : ` (at ${path})`;
  return new ApiError(
    'UnsupportedMediaType',
    `protobuf field ${number} of message ${message}${where} holds a value this server does not decode; send the object as JSON (application/json)`,
  );
}

const utf8 = new TextDecoder('utf-8');

function text(buf: Uint8Array): string {
  return utf8.decode(buf);
}

/** The wire type a field of this spec must arrive in (repeated numbers may also be packed). */
function wireTypeOf(f: FieldSpec): number {
  return f.map ? WireType.Bytes : valueWireType(f.base);
}

function valueWireType(base: string): number {
  if (!isScalar(base)) return WireType.Bytes;
  return base === 'string' || base === 'bytes' ? WireType.Bytes : WireType.Varint;
}

class Decoder {
  constructor(private readonly maxDepth: number) {}

  /** Decodes one message of the schema into `target` (fields of a repeated message merge). */
  message(name: string, buf: Uint8Array, path: string, depth: number, target: JsonObject) {
    if (depth > this.maxDepth) {
      throw new WireError(`the object is nested deeper than ${this.maxDepth} levels`);
    }
    const fields = SCHEMA.get(name)!;
    const r = new WireReader(buf);
    for (let f = r.tag(); f; f = r.tag()) {
      const spec = fields.get(f.number);
      if (!spec) {
        if (!r.skip(f.wireType).zero) throw unknownField(name, f.number, path);
        continue;
      }
      const at = spec.inline ? path : path === '' ? spec.json : `${path}.${spec.json}`;
      this.field(spec, f.wireType, r, at, depth, target, name);
    }
    return target;
  }

  private field(
    spec: FieldSpec,
    wireType: number,
    r: WireReader,
    path: string,
    depth: number,
    target: JsonObject,
    message: string,
  ): void {
    const packed =
      spec.repeated && wireType === WireType.Bytes && wireTypeOf(spec) === WireType.Varint;
    if (!packed && wireType !== wireTypeOf(spec)) {
      throw new WireError(
        `field ${spec.json} of ${message} has wire type ${wireType}, expected ${wireTypeOf(spec)}`,
      );
    }
    if (spec.inline) {
      this.message(spec.base, r.bytes(), path, depth, target);
      return;
    }
    if (spec.map) {
      const map = (target[spec.json] ??= {}) as JsonObject;
      const [key, value] = this.mapEntry(spec, r.bytes(), path, depth + 1);
      // Defined, not assigned: a key such as "__proto__" stays an own property, as in JSON.
      Object.defineProperty(map, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      return;
    }
    if (spec.repeated) {
      const list = (target[spec.json] ??= []) as unknown[];
      if (packed) {
        const inner = new WireReader(r.bytes());
        while (!inner.done) list.push(this.scalar(spec.base, inner));
        return;
      }
      const at = isScalar(spec.base) ? path : `${path}[${list.length}]`;
      list.push(this.value(spec.base, r, at, depth + 1));
      return;
    }
    if (isScalar(spec.base)) {
      const v = this.scalar(spec.base, r);
      if (spec.keepZero || !isZero(v)) target[spec.json] = v;
      else delete target[spec.json];
      return;
    }
    const existing = target[spec.json];
    if (!isSpecialBase(spec.base) && isObject(existing)) {
      this.message(spec.base, r.bytes(), path, depth + 1, existing);
      return;
    }
    target[spec.json] = this.value(spec.base, r, path, depth + 1);
  }

  private mapEntry(
    spec: FieldSpec,
    buf: Uint8Array,
    path: string,
    depth: number,
  ): [string, unknown] {
    const r = new WireReader(buf);
    let key = '';
    let value: unknown = zeroOf(spec.base);
    for (let f = r.tag(); f; f = r.tag()) {
      if (f.number === 1 && f.wireType === WireType.Bytes) key = text(r.bytes());
      else if (f.number === 2 && f.wireType === valueWireType(spec.base)) {
        value = this.value(spec.base, r, isScalar(spec.base) ? path : `${path}[${key}]`, depth);
      } else if (!r.skip(f.wireType).zero) throw unknownField(`map entry`, f.number, path);
    }
    return [key, value];
  }

  /** A field's value of any type, read from `r` (which sits at the value). */
  private value(base: string, r: WireReader, path: string, depth: number): unknown {
    if (isScalar(base)) return this.scalar(base, r);
    const buf = r.bytes();
    switch (base) {
      case 'quantity':
        return quantity(buf);
      case 'intstr':
        return intOrString(buf);
      case 'time':
        return time(buf);
      case 'fieldsV1':
        return fieldsV1(buf);
      default:
        return this.message(base, buf, path, depth, {});
    }
  }

  private scalar(base: string, r: WireReader): unknown {
    switch (base) {
      case 'string':
        return text(r.bytes());
      case 'bytes':
        return Buffer.from(r.bytes()).toString('base64');
      case 'bool':
        return r.varint() !== 0n;
      case 'int32':
        return toInt32(r.varint());
      default:
        return toInt64(r.varint());
    }
  }
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isSpecialBase(base: string): boolean {
  return base === 'quantity' || base === 'intstr' || base === 'time' || base === 'fieldsV1';
}

function isZero(v: unknown): boolean {
  return v === '' || v === 0 || v === false;
}

function zeroOf(base: string): unknown {
  if (base === 'quantity') return '0';
  if (base === 'bool') return false;
  if (base === 'int32' || base === 'int64') return 0;
  return isScalar(base) ? '' : {};
}

/** Reads the fields of a small fixed message, refusing unknown non-zero ones. */
function smallMessage(
  name: string,
  buf: Uint8Array,
  read: (num: number, wireType: number, r: WireReader) => boolean,
): void {
  const r = new WireReader(buf);
  for (let f = r.tag(); f; f = r.tag()) {
    if (read(f.number, f.wireType, r)) continue;
    if (!r.skip(f.wireType).zero) throw unknownField(name, f.number, '');
  }
}

/** resource.Quantity: its canonical string; the zero Quantity is "0" in JSON. */
function quantity(buf: Uint8Array): string {
  let s = '';
  smallMessage('resource.Quantity', buf, (num, wt, r) => {
    if (num !== 1 || wt !== WireType.Bytes) return false;
    s = text(r.bytes());
    return true;
  });
  return s === '' ? '0' : s;
}

/** intstr.IntOrString: a number, or a string when its type is 1. */
function intOrString(buf: Uint8Array): number | string {
  let type = 0n;
  let intVal = 0;
  let strVal = '';
  smallMessage('intstr.IntOrString', buf, (num, wt, r) => {
    if (num === 1 && wt === WireType.Varint) type = r.varint();
    else if (num === 2 && wt === WireType.Varint) intVal = toInt32(r.varint());
    else if (num === 3 && wt === WireType.Bytes) strVal = text(r.bytes());
    else return false;
    return true;
  });
  if (type > 1n) throw new WireError(`IntOrString type ${type} is neither 0 (int) nor 1 (string)`);
  return type === 1n ? strVal : intVal;
}

/** Seconds of year 1 and of the end of year 9999, the range Go's RFC 3339 output covers. */
const MIN_SECONDS = -62135596800;
const MAX_SECONDS = 253402300799;

/** metav1.Time: RFC 3339 in UTC to the second, as its JSON form; the zero time is null. */
function time(buf: Uint8Array): string | null {
  if (buf.length === 0) return null;
  let seconds = 0;
  let nanos = 0;
  smallMessage('meta.v1.Time', buf, (num, wt, r) => {
    if (num === 1 && wt === WireType.Varint) seconds = toInt64(r.varint());
    else if (num === 2 && wt === WireType.Varint) nanos = toInt32(r.varint());
    else return false;
    return true;
  });
  // Go's zero time sent as a message rather than as no bytes is still the zero time.
  if (seconds === MIN_SECONDS && nanos === 0) return null;
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS) {
    throw new WireError(`time ${seconds}s is outside the years 1 to 9999`);
  }
  const iso = new Date(seconds * 1000).toISOString();
  // toISOString writes years before 1000 with 4 digits too, and milliseconds we drop.
  return `${iso.slice(0, 19)}Z`;
}

/** metav1.FieldsV1: its raw bytes are the JSON it stands for. */
function fieldsV1(buf: Uint8Array): unknown {
  let raw = '';
  smallMessage('meta.v1.FieldsV1', buf, (num, wt, r) => {
    if (num !== 1 || wt !== WireType.Bytes) return false;
    raw = text(r.bytes());
    return true;
  });
  if (raw === '') return null;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new WireError('managedFields fieldsV1 is not valid JSON');
  }
}
