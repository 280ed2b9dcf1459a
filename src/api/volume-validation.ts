import type { FieldError } from './errors.js';
import { isObj, type Obj } from './json-shape.js';
import { parseQuantity } from './quantity.js';
import type { Container } from './types.js';
import { isDns1123Label, isDns1123Subdomain, qualifiedNameProblem } from './validation.js';

/**
 * Validation of a pod's volumes and of its containers' volumeMounts, in Kubernetes'
 * wording: volume names unique DNS labels, exactly one source per volume, file paths of
 * configMap, secret, downwardAPI and projected volumes that stay inside the volume, the
 * fields a downwardAPI file may show, one source per projection and no path given twice,
 * mounts that name an existing volume at an absolute path, and relative subPaths that
 * never climb with `..`.
 */

const HOST_PATH_TYPES = [
  '',
  'DirectoryOrCreate',
  'Directory',
  'FileOrCreate',
  'File',
  'Socket',
  'CharDevice',
  'BlockDevice',
];

/**
 * Volume sources the API accepts; the agent runs emptyDir, configMap, secret, hostPath,
 * downwardAPI and projected.
 */
const SOURCES = [
  'emptyDir',
  'configMap',
  'secret',
  'hostPath',
  'persistentVolumeClaim',
  'projected',
  'downwardAPI',
  'nfs',
  'csi',
  'ephemeral',
  'image',
];

/** Sources of a projected volume the API accepts; the agent refuses the last two. */
const PROJECTIONS = [
  'configMap',
  'secret',
  'downwardAPI',
  'serviceAccountToken',
  'clusterTrustBundle',
];

/** What a downwardAPI file may show besides `metadata.labels['k']` and the like. */
const VOLUME_FIELD_PATHS = [
  'metadata.annotations',
  'metadata.labels',
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
];
const KEYED_FIELD_PATH = /^metadata\.(labels|annotations)\['(.+)'\]$/;
const FIELD_RESOURCES = ['cpu', 'memory', 'ephemeral-storage'];
const RESOURCE_FIELDS = FIELD_RESOURCES.flatMap((r) => [`limits.${r}`, `requests.${r}`]);
/** The divisors Kubernetes takes: 1m and 1 for cpu, 1 and the unit prefixes for bytes. */
const CPU_DIVISORS = [0, 0.001, 1];
const BYTE_DIVISORS = [0, 1, ...[1, 2, 3, 4, 5, 6].flatMap((e) => [1000 ** e, 1024 ** e])];
/** Bounds of a serviceAccountToken's expirationSeconds, as in Kubernetes. */
const MIN_TOKEN_SECONDS = 600;
const MAX_TOKEN_SECONDS = 2 ** 32;

/** Whether `p` is a relative path none of whose elements is `..`. */
export function isSafeRelativePath(p: string): boolean {
  return !p.startsWith('/') && !p.split('/').includes('..');
}

function relativePathErrors(field: string, p: unknown, required: boolean): FieldError[] {
  if (p === undefined || p === '') return required ? [{ field, type: 'Required' }] : [];
  if (typeof p !== 'string')
    return [{ field, type: 'Invalid', value: p, detail: 'must be a string' }];
  if (p.startsWith('/')) {
    return [{ field, type: 'Invalid', value: p, detail: 'must be a relative path' }];
  }
  if (p.split('/').includes('..')) {
    return [{ field, type: 'Invalid', value: p, detail: "must not contain '..'" }];
  }
  return [];
}

/** A file path in a volume: relative, never climbing, not one of the writer's `..` names. */
function localPathErrors(field: string, p: unknown): FieldError[] {
  const errs = relativePathErrors(field, p, true);
  // Names starting with `..` are the volume writer's own (`..data`).
  if (errs.length === 0 && typeof p === 'string' && p.startsWith('..')) {
    errs.push({ field, type: 'Invalid', value: p, detail: "must not start with '..'" });
  }
  return errs;
}

function modeErrors(field: string, mode: unknown): FieldError[] {
  if (mode === undefined) return [];
  if (Number.isInteger(mode) && (mode as number) >= 0 && (mode as number) <= 0o777) return [];
  return [
    {
      field,
      type: 'Invalid',
      value: mode,
      detail: 'must be a number between 0 and 0777 (octal), both inclusive',
    },
  ];
}

function itemsErrors(path: string, items: unknown): FieldError[] {
  if (items === undefined) return [];
  if (!Array.isArray(items)) return [{ field: path, type: 'Invalid', detail: 'must be a list' }];
  const errs: FieldError[] = [];
  items.forEach((item, i) => {
    const at = `${path}[${i}]`;
    if (!isObj(item)) return errs.push({ field: at, type: 'Invalid', detail: 'must be an object' });
    if (typeof item.key !== 'string' || item.key === '')
      errs.push({ field: `${at}.key`, type: 'Required' });
    errs.push(...localPathErrors(`${at}.path`, item.path));
    errs.push(...modeErrors(`${at}.mode`, item.mode));
  });
  return errs;
}

function objectSourceErrors(path: string, src: Obj, nameField: string): FieldError[] {
  const errs: FieldError[] = [];
  const name = src[nameField];
  if (typeof name !== 'string' || name === '') {
    errs.push({ field: `${path}.${nameField}`, type: 'Required' });
  } else if (!isDns1123Subdomain(name)) {
    errs.push({ field: `${path}.${nameField}`, type: 'Invalid', value: name });
  }
  errs.push(...modeErrors(`${path}.defaultMode`, src.defaultMode));
  errs.push(...itemsErrors(`${path}.items`, src.items));
  return errs;
}

function sourceErrors(path: string, kind: string, src: unknown): FieldError[] {
  const at = `${path}.${kind}`;
  if (!isObj(src)) return [{ field: at, type: 'Invalid', detail: 'must be an object' }];
  if (kind === 'configMap') return objectSourceErrors(at, src, 'name');
  if (kind === 'secret') return objectSourceErrors(at, src, 'secretName');
  if (kind === 'downwardAPI') {
    return [
      ...modeErrors(`${at}.defaultMode`, src.defaultMode),
      ...downwardItemsErrors(`${at}.items`, src.items),
    ];
  }
  if (kind === 'projected') return projectedErrors(at, src);
  if (kind === 'hostPath') {
    const p = src.path;
    if (typeof p !== 'string' || p === '') return [{ field: `${at}.path`, type: 'Required' }];
    if (p.split('/').includes('..')) {
      return [{ field: `${at}.path`, type: 'Invalid', value: p, detail: "must not contain '..'" }];
    }
    if (src.type !== undefined && !HOST_PATH_TYPES.includes(src.type as string)) {
      return [{ field: `${at}.type`, type: 'Unsupported', value: src.type }];
    }
    return [];
  }
  if (kind === 'emptyDir') {
    const errs: FieldError[] = [];
    if (src.medium !== undefined && !['', 'Memory'].includes(src.medium as string)) {
      errs.push({ field: `${at}.medium`, type: 'Unsupported', value: src.medium });
    }
    const size = src.sizeLimit === undefined ? 0 : parseQuantity(src.sizeLimit as string);
    if (size === undefined) {
      errs.push({ field: `${at}.sizeLimit`, type: 'Invalid', value: src.sizeLimit });
    } else if (size < 0) {
      errs.push({
        field: `${at}.sizeLimit`,
        type: 'Invalid',
        value: src.sizeLimit,
        detail: 'must be greater than or equal to 0',
      });
    }
    return errs;
  }
  return [];
}

function downwardItemsErrors(path: string, items: unknown): FieldError[] {
  if (items === undefined || items === null) return [];
  if (!Array.isArray(items)) return [{ field: path, type: 'Invalid', detail: 'must be a list' }];
  return items.flatMap((item: unknown, i) => {
    const at = `${path}[${i}]`;
    if (!isObj(item)) return [{ field: at, type: 'Invalid', detail: 'must be an object' }];
    const errs = [
      ...localPathErrors(`${at}.path`, item.path),
      ...modeErrors(`${at}.mode`, item.mode),
    ];
    const { fieldRef, resourceFieldRef } = item;
    if (fieldRef != null && resourceFieldRef != null) {
      const detail = 'fieldRef and resourceFieldRef can not be specified simultaneously';
      errs.push({ field: at, type: 'Invalid', value: 'resource', detail });
    } else if (fieldRef != null) errs.push(...fieldRefErrors(`${at}.fieldRef`, fieldRef));
    else if (resourceFieldRef != null) {
      errs.push(...resourceFieldRefErrors(`${at}.resourceFieldRef`, resourceFieldRef));
    } else {
      const detail = 'one of fieldRef and resourceFieldRef is required';
      errs.push({ field: at, type: 'Required', detail });
    }
    return errs;
  });
}

function fieldRefErrors(at: string, ref: unknown): FieldError[] {
  if (!isObj(ref)) return [{ field: at, type: 'Invalid', detail: 'must be an object' }];
  const path = ref.fieldPath;
  if (typeof path !== 'string' || path === '') {
    return [{ field: `${at}.fieldPath`, type: 'Required' }];
  }
  if (VOLUME_FIELD_PATHS.includes(path)) return [];
  const keyed = keyedFieldPathErrors(path, `${at}.fieldPath`);
  if (keyed) return keyed;
  const detail = `supported values: ${VOLUME_FIELD_PATHS.map((p) => `"${p}"`).join(', ')}`;
  return [{ field: `${at}.fieldPath`, type: 'Unsupported', value: path, detail }];
}

/**
 * The errors of a `metadata.labels['KEY']` or `metadata.annotations['KEY']` field path: as
 * in Kubernetes, KEY (in lower case) must be a label key. Undefined for another path.
 */
export function keyedFieldPathErrors(path: string, at: string): FieldError[] | undefined {
  const key = KEYED_FIELD_PATH.exec(path)?.[2];
  if (key === undefined) return undefined;
  const problem = qualifiedNameProblem(key.toLowerCase());
  return problem ? [{ field: at, type: 'Invalid', value: key, detail: problem }] : [];
}

/**
 * The errors of a resourceFieldRef: a known resource, and a divisor Kubernetes allows for
 * it. A volume's (`inVolume`) must name its container, being the pod's; an env entry's
 * defaults to its own container.
 */
export function resourceFieldRefErrors(at: string, ref: unknown, inVolume = true): FieldError[] {
  if (!isObj(ref)) return [{ field: at, type: 'Invalid', detail: 'must be an object' }];
  const errs: FieldError[] = [];
  if (inVolume && (typeof ref.containerName !== 'string' || ref.containerName === '')) {
    errs.push({ field: `${at}.containerName`, type: 'Required' });
  }
  const resource = ref.resource;
  if (typeof resource !== 'string' || resource === '') {
    return [...errs, { field: `${at}.resource`, type: 'Required' }];
  }
  if (!RESOURCE_FIELDS.includes(resource)) {
    const detail = `supported values: ${RESOURCE_FIELDS.map((r) => `"${r}"`).join(', ')}`;
    return [...errs, { field: `${at}.resource`, type: 'Unsupported', value: resource, detail }];
  }
  if (ref.divisor === undefined || ref.divisor === null) return errs;
  const divisor = parseQuantity(ref.divisor as string);
  const allowed = resource.endsWith('.cpu') ? CPU_DIVISORS : BYTE_DIVISORS;
  if (divisor === undefined || !allowed.includes(divisor)) {
    const detail = resource.endsWith('.cpu')
      ? 'must be 1m or 1 for cpu'
      : 'must be 1 or one unit of a decimal or binary prefix (1k to 1E, 1Ki to 1Ei) for ' +
        'memory and ephemeral-storage';
    errs.push({ field: `${at}.divisor`, type: 'Invalid', value: ref.divisor, detail });
  }
  return errs;
}

/**
 * A projected volume: its defaultMode, then each source, which must be exactly one of
 * PROJECTIONS; every file path any source names must be unique across them all.
 */
function projectedErrors(at: string, src: Obj): FieldError[] {
  const errs = modeErrors(`${at}.defaultMode`, src.defaultMode);
  const sources = src.sources;
  if (sources === undefined || sources === null) return errs;
  if (!Array.isArray(sources)) {
    return [...errs, { field: `${at}.sources`, type: 'Invalid', detail: 'must be a list' }];
  }
  const paths = new Set<string>();
  sources.forEach((source: unknown, i) => {
    const sp = `${at}.sources[${i}]`;
    if (!isObj(source)) {
      return errs.push({ field: sp, type: 'Invalid', detail: 'must be an object' });
    }
    const kinds = Object.keys(source).filter((k) => source[k] !== undefined && source[k] !== null);
    if (kinds.length > 1) {
      const detail = 'may not specify more than 1 volume type per source';
      return errs.push({ field: `${sp}.${kinds[1]}`, type: 'Forbidden', detail });
    }
    if (kinds.length === 0) return;
    const kind = kinds[0];
    if (!PROJECTIONS.includes(kind)) {
      const detail = 'unknown projection type';
      return errs.push({ field: `${sp}.${kind}`, type: 'Unsupported', detail });
    }
    const found = projectionErrors(`${sp}.${kind}`, kind, source[kind]);
    errs.push(...found.errs);
    for (const p of found.paths) {
      if (!paths.has(p)) paths.add(p);
      else
        errs.push({ field: at, type: 'Invalid', value: p, detail: 'conflicting duplicate paths' });
    }
  });
  return errs;
}

/** The errors of one projection, and the file paths it names. */
function projectionErrors(
  at: string,
  kind: string,
  src: unknown,
): { errs: FieldError[]; paths: string[] } {
  if (!isObj(src)) {
    return { errs: [{ field: at, type: 'Invalid', detail: 'must be an object' }], paths: [] };
  }
  const itemPaths = (items: unknown) =>
    (Array.isArray(items) ? items : [])
      .map((item) => (isObj(item) ? item.path : undefined))
      .filter((p): p is string => typeof p === 'string' && p !== '');
  if (kind === 'configMap' || kind === 'secret') {
    const errs: FieldError[] = [];
    if (typeof src.name !== 'string' || src.name === '') {
      errs.push({ field: `${at}.name`, type: 'Required' });
    }
    errs.push(...itemsErrors(`${at}.items`, src.items));
    return { errs, paths: itemPaths(src.items) };
  }
  if (kind === 'downwardAPI') {
    return { errs: downwardItemsErrors(`${at}.items`, src.items), paths: itemPaths(src.items) };
  }
  const errs = localPathErrors(`${at}.path`, src.path);
  if (kind === 'serviceAccountToken') errs.push(...tokenLifetimeErrors(at, src.expirationSeconds));
  return { errs, paths: typeof src.path === 'string' && src.path ? [src.path] : [] };
}

function tokenLifetimeErrors(at: string, seconds: unknown): FieldError[] {
  if (seconds === undefined || seconds === null) return [];
  const field = `${at}.expirationSeconds`;
  if (!Number.isInteger(seconds)) return [{ field, type: 'Invalid', value: seconds }];
  if ((seconds as number) < MIN_TOKEN_SECONDS) {
    const detail = 'may not specify a duration less than 10 minutes';
    return [{ field, type: 'Invalid', value: seconds, detail }];
  }
  if ((seconds as number) > MAX_TOKEN_SECONDS) {
    const detail = 'may not specify a duration larger than 2^32 seconds';
    return [{ field, type: 'Invalid', value: seconds, detail }];
  }
  return [];
}

function volumeErrors(v: unknown, path: string, names: Set<string>): FieldError[] {
  if (!isObj(v)) return [{ field: path, type: 'Invalid', detail: 'must be an object' }];
  const errs: FieldError[] = [];
  const name = v.name;
  if (typeof name !== 'string' || name === '')
    errs.push({ field: `${path}.name`, type: 'Required' });
  else if (!isDns1123Label(name)) {
    errs.push({
      field: `${path}.name`,
      type: 'Invalid',
      value: name,
      detail: 'must be a DNS label',
    });
  } else if (names.has(name)) errs.push({ field: `${path}.name`, type: 'Duplicate', value: name });
  else names.add(name);
  const kinds = Object.keys(v).filter((k) => k !== 'name' && v[k] !== undefined && v[k] !== null);
  if (kinds.length === 0) {
    errs.push({ field: path, type: 'Required', detail: 'must specify a volume type' });
  } else if (kinds.length > 1) {
    errs.push({
      field: `${path}.${kinds[1]}`,
      type: 'Forbidden',
      detail: 'may not specify more than 1 volume type',
    });
  } else if (!SOURCES.includes(kinds[0])) {
    errs.push({ field: `${path}.${kinds[0]}`, type: 'Unsupported', detail: 'unknown volume type' });
  } else errs.push(...sourceErrors(path, kinds[0], v[kinds[0]]));
  return errs;
}

/** Validates `spec.volumes`; returns the names of the valid ones for mount checks. */
export function validateVolumes(
  volumes: unknown,
  path: string,
): { errs: FieldError[]; names: Set<string> } {
  const names = new Set<string>();
  if (volumes === undefined || volumes === null) return { errs: [], names };
  if (!Array.isArray(volumes)) {
    return { errs: [{ field: path, type: 'Invalid', detail: 'must be a list' }], names };
  }
  const errs = volumes.flatMap((v, i) => volumeErrors(v, `${path}[${i}]`, names));
  return { errs, names };
}

/** Validates one container's volumeMounts against the pod's volume names. */
export function validateVolumeMounts(
  c: Container,
  path: string,
  volumes: Set<string>,
): FieldError[] {
  const mounts = c.volumeMounts;
  if (mounts === undefined) return [];
  if (!Array.isArray(mounts)) return [{ field: path, type: 'Invalid', detail: 'must be a list' }];
  const errs: FieldError[] = [];
  const seen = new Set<string>();
  mounts.forEach((m: unknown, i) => {
    const at = `${path}[${i}]`;
    if (!isObj(m)) return errs.push({ field: at, type: 'Invalid', detail: 'must be an object' });
    if (typeof m.name !== 'string' || m.name === '')
      errs.push({ field: `${at}.name`, type: 'Required' });
    else if (!volumes.has(m.name))
      errs.push({ field: `${at}.name`, type: 'NotFound', value: m.name });
    const mp = m.mountPath;
    if (typeof mp !== 'string' || mp === '')
      errs.push({ field: `${at}.mountPath`, type: 'Required' });
    else if (!mp.startsWith('/')) {
      errs.push({
        field: `${at}.mountPath`,
        type: 'Invalid',
        value: mp,
        detail: 'must be an absolute path',
      });
    } else if (seen.has(mp)) {
      errs.push({ field: `${at}.mountPath`, type: 'Invalid', value: mp, detail: 'must be unique' });
    } else seen.add(mp);
    errs.push(...relativePathErrors(`${at}.subPath`, m.subPath, false));
    errs.push(...relativePathErrors(`${at}.subPathExpr`, m.subPathExpr, false));
    if (m.subPath && m.subPathExpr) {
      errs.push({
        field: `${at}.subPathExpr`,
        type: 'Invalid',
        value: m.subPathExpr,
        detail: 'subPathExpr and subPath are mutually exclusive',
      });
    }
    if (m.readOnly !== undefined && typeof m.readOnly !== 'boolean') {
      errs.push({
        field: `${at}.readOnly`,
        type: 'Invalid',
        value: m.readOnly,
        detail: 'must be a boolean',
      });
    }
  });
  return errs;
}
