import { RuntimeError } from './runtime.js';

/**
 * Image references, parsed and normalised the way Docker does it:
 * `busybox` → `docker.io/library/busybox:latest`, `foo/bar:1` → `docker.io/foo/bar:1`,
 * `127.0.0.1:5000/x@sha256:...` keeps its registry and digest.
 */

/** A parsed, normalised image reference. */
export interface ImageReference {
  /** Registry host, with port if any: docker.io, localhost, 127.0.0.1:5000. */
  domain: string;
  /** Repository path below the registry, e.g. library/busybox. */
  path: string;
  /** Tag; `latest` when the reference names neither tag nor digest. */
  tag?: string;
  /** Content digest (algorithm:hex) when the reference pins one. */
  digest?: string;
}

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const MAX_NAME_LENGTH = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_LABEL = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*(?::[0-9]+)?$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;

function invalid(ref: string, why: string): RuntimeError {
  return new RuntimeError('InvalidImageName', `invalid image reference "${ref}": ${why}`);
}

/** Splits `name[:tag][@digest]` into its parts; does not validate them. */
function splitSuffixes(ref: string): { name: string; tag?: string; digest?: string } {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }

  // A colon after the last slash separates the tag; one before it is a registry port.
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    return { name: rest.slice(0, colon), tag: rest.slice(colon + 1), digest };
  }
  return { name: rest, digest };
}

/** Whether the first path component names a registry rather than a repository. */
function looksLikeDomain(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first);
}

function checkDigest(ref: string, digest: string): void {
  if (!DIGEST.test(digest)) throw invalid(ref, `malformed digest "${digest}"`);
  const [algorithm, hex] = digest.split(':');
  if (algorithm === 'sha256' && !SHA256_HEX.test(hex)) {
    throw invalid(ref, 'a sha256 digest has 64 lower-case hex digits');
  }
}

/**
 * Parses and normalises an image reference. Throws RuntimeError('InvalidImageName') for
 * anything Docker would refuse.
 */
export function parseReference(ref: string): ImageReference {
  if (ref.length === 0) throw invalid(ref, 'empty');
  const { name, tag, digest } = splitSuffixes(ref);
  if (tag !== undefined && !TAG.test(tag)) throw invalid(ref, `malformed tag "${tag}"`);
  if (digest !== undefined) checkDigest(ref, digest);
  if (name.length === 0) throw invalid(ref, 'no repository name');

  const parts = name.split('/');
  let domain = DEFAULT_DOMAIN;
  if (parts.length > 1 && looksLikeDomain(parts[0])) {
    domain = parts.shift() as string;
    if (!DOMAIN.test(domain)) throw invalid(ref, `malformed registry "${domain}"`);
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  for (const part of parts) {
    if (!PATH_COMPONENT.test(part)) throw invalid(ref, `malformed path component "${part}"`);
  }

  let path = parts.join('/');
  if (domain === DEFAULT_DOMAIN && parts.length === 1) path = OFFICIAL_PREFIX + path;
  if (domain.length + 1 + path.length > MAX_NAME_LENGTH) {
    throw invalid(ref, `name longer than ${MAX_NAME_LENGTH} characters`);
  }
  return { domain, path, tag: tag ?? (digest ? undefined : 'latest'), digest };
}

/** The canonical string form of a parsed reference. */
export function formatReference(ref: ImageReference): string {
  let out = `${ref.domain}/${ref.path}`;
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/** Normalises a reference to its canonical string: busybox → docker.io/library/busybox:latest. */
export function normalizeReference(ref: string): string {
  return formatReference(parseReference(ref));
}
