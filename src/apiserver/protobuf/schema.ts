/**
 * The schema language of the message tables: for each message, its field numbers and what
 * each becomes in the JSON form of the object. A field is written as `json:type`, where
 *
 * - `json` is the JSON field name; a trailing `!` keeps the field when its value is zero
 *   (Go pointers and fields without `omitempty`); `*` inlines a message's fields into the
 *   parent (an embedded Go struct, as LocalObjectReference in ConfigMapKeySelector);
 * - `type` is a scalar (`string`, the default when `:type` is left out, `bool`, `int32`,
 *   `int64`, `bytes`), a well-known apimachinery type (`quantity`, `intstr`, `time`,
 *   `fieldsV1`), a message name, `[]T` for a repeated field or `map<T>` for a map with
 *   string keys.
 *
 * The field numbers are those of the published `generated.proto` files of k8s.io/api and
 * k8s.io/apimachinery; the tables hold only the messages flyCes decodes.
 */

export type Scalar = 'string' | 'bool' | 'int32' | 'int64' | 'bytes';
export type Special = 'quantity' | 'intstr' | 'time' | 'fieldsV1';

export interface FieldType {
  /** A scalar, a special type or a message name. */
  base: Scalar | Special | string;
  repeated: boolean;
  /** For `map<T>`: the values' type; keys are strings. */
  map: boolean;
}

export interface FieldSpec extends FieldType {
  json: string;
  keepZero: boolean;
  inline: boolean;
}

export type MessageTable = Record<string, Record<number, string>>;
export type Schema = Map<string, Map<number, FieldSpec>>;

const SCALARS = new Set(['string', 'bool', 'int32', 'int64', 'bytes']);
const SPECIALS = new Set(['quantity', 'intstr', 'time', 'fieldsV1']);

export function isScalar(base: string): base is Scalar {
  return SCALARS.has(base);
}

export function isSpecial(base: string): base is Special {
  return SPECIALS.has(base);
}

function parseField(message: string, spec: string): FieldSpec {
  const [rawName, rawType = 'string'] = spec.split(':');
  const keepZero = rawName.endsWith('!');
  const json = keepZero ? rawName.slice(0, -1) : rawName;
  let base = rawType;
  let repeated = false;
  let map = false;
  if (base.startsWith('[]')) {
    repeated = true;
    base = base.slice(2);
  } else if (base.startsWith('map<') && base.endsWith('>')) {
    map = true;
    base = base.slice(4, -1);
  }
  if (base === '' || json === '') throw new Error(`bad field spec ${message}: ${spec}`);
  return { json, base, repeated, map, keepZero, inline: json === '*' };
}

/**
 * Builds a schema from message tables, checking that every message a field names exists,
 * so a typo in a table fails at start-up rather than on some request.
 */
export function buildSchema(...tables: MessageTable[]): Schema {
  const schema: Schema = new Map();
  for (const table of tables) {
    for (const [name, fields] of Object.entries(table)) {
      if (schema.has(name)) throw new Error(`message ${name} is defined twice`);
      const parsed = new Map<number, FieldSpec>();
      for (const [num, spec] of Object.entries(fields))
        parsed.set(Number(num), parseField(name, spec));
      schema.set(name, parsed);
    }
  }
  for (const [name, fields] of schema) {
    for (const [num, f] of fields) {
      if (isScalar(f.base) || isSpecial(f.base) || schema.has(f.base)) continue;
      throw new Error(`message ${name} field ${num} names unknown message ${f.base}`);
    }
  }
  return schema;
}
