import type { FieldError } from './errors.js';
import { parseQuantity } from './quantity.js';
import type { Container } from './types.js';
import { isDns1123Label, isDns1123Subdomain } from './validation.js';

/**
 * Validation of a pod's volumes and of its containers' volumeMounts, in Kubernetes'
 * wording: volume names unique DNS labels, exactly one source per volume, mounts that name
 * an existing volume at an absolute path, and relative subPaths that never climb with `..`.
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

/** Volume sources the API accepts; the agent runs emptyDir, configMap, secret, hostPath. */
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

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

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
    errs.push(...relativePathErrors(`${at}.path`, item.path, true));
    // Names starting with `..` are the volume writer's own (`..data`).
    if (typeof item.path === 'string' && item.path.startsWith('..') && item.path !== '..') {
      errs.push({
        field: `${at}.path`,
        type: 'Invalid',
        value: item.path,
        detail: "must not start with '..'",
      });
    }
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
