import type { FieldError } from './errors.js';
import type { ConfigMap, KObject, Secret } from './types.js';
import { deepEqual } from '../util/equal.js';

/**
 * Defaulting and validation of ConfigMaps and Secrets. A Secret's values are secret: no
 * error built here carries one (only key names, which Kubernetes treats as public), and
 * nothing here logs.
 */

/** The most bytes a ConfigMap's or Secret's values may hold together, as in Kubernetes. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Whether `key` may name a value of a ConfigMap or Secret (and so a file in a volume). */
export function isConfigKey(key: string): boolean {
  return (
    key.length <= 253 &&
    CONFIG_KEY.test(key) &&
    key !== '.' &&
    key !== '..' &&
    !key.startsWith('..')
  );
}

function keyError(field: string, key: string): FieldError | undefined {
  if (isConfigKey(key)) return undefined;
  let detail =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' " +
    "(regex used for validation is '[-._a-zA-Z0-9]+')";
  if (key === '.' || key === '..' || key.startsWith('..')) detail = 'must not start with ".."';
  return { field, type: 'Invalid', value: key, detail };
}

/** The bytes a base64 text decodes to, or undefined when it is not strict base64. */
export function decodeBase64(text: string): Buffer | undefined {
  // Go's decoder, which Kubernetes clients are written against, skips line breaks.
  const clean = text.replace(/[\r\n]/g, '');
  return BASE64.test(clean) ? Buffer.from(clean, 'base64') : undefined;
}

function isStringMap(value: unknown): value is Record<string, unknown> {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

function mapError(field: string, value: unknown): FieldError[] {
  if (value === undefined || value === null || isStringMap(value)) return [];
  return [{ field, type: 'Invalid', detail: 'must be a map of strings' }];
}

function tooLong(field: string, bytes: number): FieldError[] {
  if (bytes <= MAX_CONFIG_BYTES) return [];
  return [{ field, type: 'TooLong', detail: `must have at most ${MAX_CONFIG_BYTES} bytes` }];
}

/** Checks `immutable` on update: once true, it stays true and the values stay as they are. */
function immutableErrors(obj: KObject, old: KObject | undefined, fields: string[]): FieldError[] {
  if (!old || old.immutable !== true) return [];
  const errs: FieldError[] = [];
  if (obj.immutable !== true) {
    errs.push({
      field: 'immutable',
      type: 'Forbidden',
      detail: 'field is immutable when `immutable` is set',
    });
  }
  for (const field of fields) {
    if (!deepEqual(obj[field] ?? {}, old[field] ?? {})) {
      errs.push({ field, type: 'Forbidden', detail: 'field is immutable when `immutable` is set' });
    }
  }
  return errs;
}

function immutableTypeError(obj: KObject): FieldError[] {
  const v = obj.immutable;
  if (v === undefined || v === null || typeof v === 'boolean') return [];
  return [{ field: 'immutable', type: 'Invalid', value: v, detail: 'must be a boolean' }];
}

/** Validates a ConfigMap, and against `old` on update. */
export function validateConfigMap(obj: KObject, old?: KObject): FieldError[] {
  const cm = obj as ConfigMap;
  const errs = [...mapError('data', cm.data), ...mapError('binaryData', cm.binaryData)];
  errs.push(...immutableTypeError(cm));
  if (errs.length > 0) return errs;
  let bytes = 0;
  for (const [key, value] of Object.entries(cm.data ?? {})) {
    const bad = keyError('data', key);
    if (bad) errs.push(bad);
    if (typeof value !== 'string') {
      errs.push({ field: `data[${key}]`, type: 'Invalid', detail: 'must be a string' });
    } else bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  for (const [key, value] of Object.entries(cm.binaryData ?? {})) {
    const bad = keyError('binaryData', key);
    if (bad) errs.push(bad);
    if (cm.data && key in cm.data) {
      errs.push({
        field: 'binaryData',
        type: 'Invalid',
        value: key,
        detail: 'duplicate of key present in data',
      });
    }
    const bin = typeof value === 'string' ? decodeBase64(value) : undefined;
    if (!bin) {
      errs.push({ field: `binaryData[${key}]`, type: 'Invalid', detail: 'must be base64' });
    } else bytes += Buffer.byteLength(key) + bin.length;
  }
  errs.push(...tooLong('', bytes).map((e) => ({ ...e, field: '[data, binaryData]' })));
  errs.push(...immutableErrors(cm, old, ['data', 'binaryData']));
  return errs;
}

/**
 * Folds `stringData` into `data` as base64, as the API server does on every write; a
 * stringData that is not a map of strings is left for validation to refuse.
 */
export function defaultSecret(obj: KObject): void {
  const secret = obj as Secret;
  if (secret.type === undefined || secret.type === '') secret.type = 'Opaque';
  const strings = secret.stringData;
  if (strings === undefined || strings === null) {
    delete secret.stringData;
    return;
  }
  if (!isStringMap(strings) || Object.values(strings).some((v) => typeof v !== 'string')) return;
  if (secret.data !== undefined && !isStringMap(secret.data)) return;
  const data = { ...(secret.data ?? {}) };
  for (const [key, value] of Object.entries(strings)) {
    data[key] = Buffer.from(value as string, 'utf8').toString('base64');
  }
  secret.data = data;
  delete secret.stringData;
}

/** Keys that a Secret of a well-known type must carry. */
const REQUIRED_KEYS: Record<string, string[]> = {
  'kubernetes.io/dockerconfigjson': ['.dockerconfigjson'],
  'kubernetes.io/dockercfg': ['.dockercfg'],
  'kubernetes.io/tls': ['tls.crt', 'tls.key'],
  'kubernetes.io/ssh-auth': ['ssh-privatekey'],
};

/** Validates a Secret, and against `old` on update. Errors never carry a value. */
export function validateSecret(obj: KObject, old?: KObject): FieldError[] {
  const secret = obj as Secret;
  if (secret.stringData !== undefined) {
    // Defaulting folds every valid stringData away, so what is left is malformed.
    return [{ field: 'stringData', type: 'Invalid', detail: 'must be a map of strings' }];
  }
  const errs = [...mapError('data', secret.data), ...immutableTypeError(secret)];
  if (typeof secret.type !== 'string') {
    errs.push({ field: 'type', type: 'Invalid', detail: 'must be a string' });
  }
  if (errs.length > 0) return errs;
  const decoded = new Map<string, Buffer>();
  let bytes = 0;
  for (const [key, value] of Object.entries(secret.data ?? {})) {
    const bad = keyError('data', key);
    if (bad) errs.push(bad);
    const bin = typeof value === 'string' ? decodeBase64(value) : undefined;
    if (!bin) {
      errs.push({ field: `data[${key}]`, type: 'Invalid', detail: 'must be base64' });
      continue;
    }
    decoded.set(key, bin);
    bytes += Buffer.byteLength(key) + bin.length;
  }
  errs.push(...tooLong('data', bytes));
  errs.push(...typeErrors(secret, decoded));
  if (old && old.type !== secret.type) {
    errs.push({ field: 'type', type: 'Invalid', value: secret.type, detail: 'field is immutable' });
  }
  errs.push(...immutableErrors(secret, old, ['data']));
  return errs;
}

function typeErrors(secret: Secret, decoded: Map<string, Buffer>): FieldError[] {
  const errs: FieldError[] = [];
  for (const key of REQUIRED_KEYS[secret.type ?? ''] ?? []) {
    if (!decoded.has(key) && !(secret.data && key in secret.data)) {
      errs.push({ field: `data[${key}]`, type: 'Required' });
    }
  }
  const json = decoded.get('.dockerconfigjson');
  if (secret.type === 'kubernetes.io/dockerconfigjson' && json && !isJson(json)) {
    errs.push({ field: 'data[.dockerconfigjson]', type: 'Invalid', detail: 'must be valid JSON' });
  }
  if (secret.type === 'kubernetes.io/basic-auth') {
    if (!decoded.has('username') && !decoded.has('password')) {
      errs.push({ field: 'data[username]', type: 'Required', detail: 'or data[password]' });
    }
  }
  return errs;
}

function isJson(bytes: Buffer): boolean {
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}
