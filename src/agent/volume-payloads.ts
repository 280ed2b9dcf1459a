import { decodeBase64 } from '../api/config.js';
import type { Pod } from '../api/types.js';
import { ConfigError, fieldRefValue, resourceFieldValue, type EnvContext } from './env.js';

/**
 * What the agent writes into a configMap, secret, downwardAPI or projected volume: the
 * files by path inside the volume, each with its mode. Pure functions over the pod and the
 * objects it names; volumes.ts writes the result with its `..data` swap. Messages name the
 * volume, objects, keys and paths, never a value.
 *
 * A downwardAPI file shows one field as it is (`metadata.name`, `metadata.labels['k']`) or
 * a whole map as kubelet formats it (see formatMap); a resourceFieldRef shows the same
 * number the container's env would. A projected volume is the union of its sources'
 * files; where two sources give one path, the later one wins, as with kubelet (the API
 * refuses two items of one path, but a source without items gives every key it has).
 * serviceAccountToken and clusterTrustBundle sources are refused: this cluster has no
 * ServiceAccounts to issue tokens for and serves no ClusterTrustBundles.
 */

/** A volume's files by relative path. */
export type Payload = Map<string, { data: Buffer; mode: number }>;
type Obj = Record<string, any>;

/** The mode of a file whose volume names none. */
const DEFAULT_MODE = 0o644;

/** The field paths a downwardAPI file may show besides `metadata.labels['k']` forms. */
const VOLUME_FIELDS = [
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'metadata.labels',
  'metadata.annotations',
];
const KEYED_FIELD = /^metadata\.(labels|annotations)\['.*'\]$/;

/** Why each projection this agent cannot serve is refused. */
const REFUSED_PROJECTIONS: Record<string, string> = {
  serviceAccountToken: 'this cluster has no ServiceAccounts to issue tokens for',
  clusterTrustBundle: 'this cluster serves no ClusterTrustBundles',
};

/** A configMap or secret as a volume or a projection names it. */
interface ObjectRef {
  name: string;
  items?: unknown;
  optional?: boolean;
}

/**
 * The files of the volume `v` of `kind` (configMap, secret, downwardAPI or projected); throws
 * ConfigError, naming the volume, when a source is missing or cannot be shown.
 */
export function volumePayload(pod: Pod, v: Obj, kind: string, ctx: EnvContext): Payload {
  const src = v[kind] as Obj;
  const mode = modeOr(src.defaultMode, DEFAULT_MODE);
  if (kind === 'configMap') return configMapPayload(pod, v.name, src as ObjectRef, mode, ctx);
  if (kind === 'secret') {
    const ref = { ...src, name: src.secretName } as ObjectRef;
    return secretPayload(pod, v.name, ref, mode, ctx);
  }
  if (kind === 'downwardAPI') return downwardAPIPayload(pod, v.name, src.items, mode, ctx);
  if (kind === 'projected') return projectedPayload(pod, v.name, src, mode, ctx);
  throw new Error(`volume "${v.name}": ${kind} volumes are not written from a payload`);
}

/** Whether `v` shows the pod's labels or annotations, which change while it runs. */
export function showsPodMetadata(v: Obj): boolean {
  if (v.downwardAPI) return true;
  return asList(v.projected?.sources).some((s) => s?.downwardAPI);
}

function modeOr(mode: unknown, fallback: number): number {
  return Number.isInteger(mode) ? (mode as number) : fallback;
}

function asList(v: unknown): Obj[] {
  return Array.isArray(v) ? v : [];
}

function configMapPayload(
  pod: Pod,
  volume: string,
  ref: ObjectRef,
  mode: number,
  ctx: EnvContext,
): Payload {
  const cm = ctx.source.configMap(pod.metadata.namespace!, ref.name);
  const values = cm && new Map<string, Buffer>();
  for (const [k, text] of Object.entries(cm?.data ?? {})) values!.set(k, Buffer.from(text));
  for (const [k, b64] of Object.entries(cm?.binaryData ?? {})) values!.set(k, bytesOf(b64));
  return objectPayload(volume, 'configmap', values, ref, mode);
}

function secretPayload(
  pod: Pod,
  volume: string,
  ref: ObjectRef,
  mode: number,
  ctx: EnvContext,
): Payload {
  const secret = ctx.source.secret(pod.metadata.namespace!, ref.name);
  const values = secret && new Map<string, Buffer>();
  for (const [k, b64] of Object.entries(secret?.data ?? {})) values!.set(k, bytesOf(b64));
  return objectPayload(volume, 'secret', values, ref, mode);
}

function bytesOf(b64: string): Buffer {
  return decodeBase64(b64) ?? Buffer.alloc(0);
}

/** The files of the object `ref` names, given its values; none if it is missing and optional. */
function objectPayload(
  volume: string,
  kind: 'configmap' | 'secret',
  values: Map<string, Buffer> | undefined,
  ref: ObjectRef,
  mode: number,
): Payload {
  if (!values) {
    if (ref.optional === true) return new Map();
    throw new ConfigError(`volume "${volume}": ${kind} "${ref.name}" not found`);
  }
  return keysPayload(volume, kind, values, ref, mode);
}

/** The files of a configMap or secret: every key, or the listed items. */
function keysPayload(
  volume: string,
  what: string,
  values: Map<string, Buffer>,
  ref: ObjectRef,
  mode: number,
): Payload {
  const out: Payload = new Map();
  if (!Array.isArray(ref.items)) {
    for (const [key, data] of values) out.set(key, { data, mode });
    return out;
  }
  for (const item of ref.items as Obj[]) {
    const data = values.get(item.key);
    if (data === undefined) {
      if (ref.optional === true) continue;
      throw new ConfigError(`volume "${volume}": ${what} references non-existent key: ${item.key}`);
    }
    out.set(item.path, { data, mode: modeOr(item.mode, mode) });
  }
  return out;
}

function downwardAPIPayload(
  pod: Pod,
  volume: string,
  items: unknown,
  mode: number,
  ctx: EnvContext,
): Payload {
  const out: Payload = new Map();
  for (const item of asList(items)) {
    const text = downwardValue(pod, item, ctx, `volume "${volume}": item ${item.path}`);
    out.set(item.path, { data: Buffer.from(text, 'utf8'), mode: modeOr(item.mode, mode) });
  }
  return out;
}

/** The text of one downwardAPI file; `shown` names it in errors. */
function downwardValue(pod: Pod, item: Obj, ctx: EnvContext, shown: string): string {
  const path = item.fieldRef?.fieldPath;
  if (item.fieldRef) {
    if (path === 'metadata.labels') return formatMap(pod.metadata.labels);
    if (path === 'metadata.annotations') return formatMap(pod.metadata.annotations);
    if (!VOLUME_FIELDS.includes(path) && !KEYED_FIELD.test(path)) {
      throw new ConfigError(`${shown}: fieldPath ${String(path)} cannot be shown in a volume`);
    }
    return fieldRefValue(pod, path, ctx);
  }
  const ref = item.resourceFieldRef;
  if (!ref) throw new ConfigError(`${shown}: names neither a fieldRef nor a resourceFieldRef`);
  if (!ref.containerName) throw new ConfigError(`${shown}: resourceFieldRef needs a containerName`);
  try {
    // The container is found by containerName; the one passed is only env's default.
    return resourceFieldValue(pod, pod.spec.containers[0], ref, ctx);
  } catch (err) {
    throw err instanceof ConfigError ? new ConfigError(`${shown}: ${err.message}`) : err;
  }
}

/** The files of a projected volume: its sources' files in order, a later one over an earlier. */
function projectedPayload(
  pod: Pod,
  volume: string,
  src: Obj,
  mode: number,
  ctx: EnvContext,
): Payload {
  const out: Payload = new Map();
  for (const [i, source] of asList(src.sources).entries()) {
    const kind = Object.keys(source ?? {}).find((k) => source[k] != null);
    if (kind === undefined) continue;
    const part = projectionPayload(pod, volume, source, kind, mode, ctx);
    if (!part) {
      const why = REFUSED_PROJECTIONS[kind] ?? 'the agent does not know this source';
      throw new ConfigError(`volume "${volume}": sources[${i}]: ${kind} is not supported: ${why}`);
    }
    for (const [path, file] of part) out.set(path, file);
  }
  return out;
}

function projectionPayload(
  pod: Pod,
  volume: string,
  source: Obj,
  kind: string,
  mode: number,
  ctx: EnvContext,
): Payload | undefined {
  const ref = source[kind] as Obj;
  if (kind === 'configMap') return configMapPayload(pod, volume, ref as ObjectRef, mode, ctx);
  if (kind === 'secret') return secretPayload(pod, volume, ref as ObjectRef, mode, ctx);
  if (kind === 'downwardAPI') return downwardAPIPayload(pod, volume, ref.items, mode, ctx);
  return undefined;
}

/**
 * `m` as kubelet writes a labels or annotations file: one `key="value"` line per entry,
 * sorted by key (byte order), each value quoted as Go's %q quotes it, and no newline
 * after the last line.
 */
export function formatMap(m: Record<string, string> | undefined): string {
  const keys = Object.keys(m ?? {}).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return keys.map((k) => `${k}=${goQuote(String(m![k]))}`).join('\n');
}

/** Letters, marks, numbers, punctuation and symbols: what Go's strconv.IsPrint takes. */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;
const SHORT_ESCAPES: Record<string, string> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
};

/**
 * `s` in double quotes the way Go's strconv.Quote writes it: `"` and `\` escaped, printable
 * characters as they are, the C escapes for the usual control characters, `\xNN` for the
 * other ASCII ones, and `\uNNNN` or `\UNNNNNNNN` for any other character not printable.
 * A lone UTF-16 surrogate, which has no UTF-8 form, shows as U+FFFD, as Go's JSON decoding
 * of it would have made it.
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (cp >= 0xd800 && cp <= 0xdfff) out += '\ufffd';
    else if (PRINTABLE.test(ch)) out += ch;
    else if (SHORT_ESCAPES[ch]) out += SHORT_ESCAPES[ch];
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${hex(cp, 2)}`;
    else if (cp < 0x10000) out += `\\u${hex(cp, 4)}`;
    else out += `\\U${hex(cp, 8)}`;
  }
  return `${out}"`;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}
