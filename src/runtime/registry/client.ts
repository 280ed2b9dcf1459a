import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';

import type { Descriptor } from '../archive.js';
import type { Authorizer } from './auth.js';
import type { Endpoint } from './endpoints.js';
import { RuntimeError } from '../runtime.js';
import { pullError, redact } from './errors.js';
import { readBody, send, type HttpResponse, type TlsSettings } from './http.js';

/**
 * The distribution API calls of a pull against one endpoint and one repository: GET a
 * manifest, GET a blob into a file. Each answers a 401 challenge once, then fails. Bytes
 * are hashed as they arrive and checked against the digest asked for; a
 * Docker-Content-Digest header is never taken in place of that.
 */

export const MANIFEST_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const ACCEPT = Object.values(MANIFEST_TYPES).join(', ');
const MAX_ERROR_BODY = 64 << 10;

export interface ClientOptions {
  endpoint: Endpoint;
  /** Repository path on the endpoint, e.g. library/busybox. */
  repository: string;
  authorizer: Authorizer;
  tls?: TlsSettings;
  timeoutMs: number;
  signal?: AbortSignal;
  /** How messages name the image: the reference being pulled. */
  image: string;
}

/** A manifest or index as fetched: its bytes (hashed by the caller) and media type. */
export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string | undefined;
}

/** The sha256 digest of some bytes, as `sha256:<hex>`. */
export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export class RegistryClient {
  private readonly scope: string;
  /** The credentials and tokens sent in Authorization headers, for refusal() to blot out. */
  private readonly sent = new Set<string>();
  /** Whether the registry answered basic credentials with 401: they are wrong. */
  private refusedBasic = false;

  constructor(private readonly o: ClientOptions) {
    this.scope = `repository:${o.repository}:pull`;
  }

  /** Where messages say an answer came from, when it was not the registry itself. */
  private get where(): string {
    return this.o.endpoint.mirror ? ` (mirror ${this.o.endpoint.api.host})` : '';
  }

  /** GETs a path below the repository, answering one auth challenge. */
  private async get(rel: string, accept?: string, abort?: AbortSignal): Promise<HttpResponse> {
    const url = new URL(`${this.o.repository}/${rel}`, this.o.endpoint.api);
    const request = async (authorization: string | undefined) => {
      const headers: Record<string, string> = {};
      if (accept) headers.Accept = accept;
      if (authorization) {
        headers.Authorization = authorization;
        this.sent.add(authorization.replace(/^\S+\s+/, ''));
      }
      const { timeoutMs, tls } = this.o;
      return send({ url, headers, tls, timeoutMs, signal: abort ?? this.o.signal });
    };
    const sent = this.o.authorizer.current(this.scope);
    const res = await request(sent);
    if (res.status !== 401) return res;
    if (sent?.startsWith('Basic ')) this.refusedBasic = true;
    res.body.resume();
    const answer = await this.o.authorizer.answer(res.headers['www-authenticate'], this.scope);
    const again = await request(answer);
    if (again.status === 401 && answer.startsWith('Basic ')) this.refusedBasic = true;
    return again;
  }

  /**
   * Turns a refusal into ErrImagePull, using the registry's own error code and message. The
   * message never shows the credentials or token this client sent, should a registry
   * quote them back.
   */
  private async refusal(res: HttpResponse, what: string): Promise<Error> {
    const body = await readBody(res, MAX_ERROR_BODY, 'error body').catch(() => Buffer.alloc(0));
    let message = '';
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { errors?: { message?: unknown }[] };
      const first = parsed.errors?.[0]?.message;
      if (typeof first === 'string') message = redact(first, this.sent);
    } catch {
      // Not a distribution API error body; the status says enough.
    }
    const detail = message === '' ? '' : `: ${message}`;
    switch (res.status) {
      case 401:
        // A registry says "authentication required" to wrong credentials as to none.
        if (this.refusedBasic) {
          const user = this.o.authorizer.user;
          const why = message ? ` (${message})` : '';
          return pullError(
            `unauthorized: ${res.url.host} refused the credentials of user "${user}"${why}${this.where}`,
          );
        }
        return pullError(`unauthorized: ${message || 'authentication required'}${this.where}`);
      case 403:
        return pullError(`denied: ${message || 'access to the repository denied'}${this.where}`);
      case 404:
        return pullError(`${what}: ${this.o.image}${this.where}`);
      case 429:
        return pullError(`toomanyrequests: ${message || 'rate limited'}${this.where}`);
      default:
        return pullError(`${res.url.host} answered HTTP ${res.status}${detail}${this.where}`);
    }
  }

  /** GETs a manifest or index by tag or digest, up to `max` bytes. */
  async manifest(reference: string, max: number): Promise<FetchedManifest> {
    const res = await this.get(`manifests/${reference}`, ACCEPT);
    if (res.status !== 200) throw await this.refusal(res, 'manifest unknown');
    const bytes = await readBody(res, max, `manifest ${this.o.image}`);
    const type = res.headers['content-type']?.split(';')[0].trim();
    return { bytes, mediaType: type };
  }

  /** GETs a small blob (an image config) into memory and checks its digest. */
  async smallBlob(desc: Descriptor, max: number, what: string): Promise<Buffer> {
    checkDeclaredSize(desc, max, what);
    const res = await this.get(`blobs/${desc.digest}`);
    if (res.status !== 200) throw await this.refusal(res, `blob unknown: ${desc.digest} in`);
    const bytes = await readBody(res, desc.size, `${what} ${desc.digest}`);
    verify(desc, bytes.length, digestOf(bytes), what);
    return bytes;
  }

  /** GETs a blob into `file` (created new), hashing it on the way; checks size and digest. */
  async blobToFile(
    desc: Descriptor,
    file: string,
    max: number,
    what: string,
    abort?: AbortSignal,
  ): Promise<void> {
    checkDeclaredSize(desc, max, what);
    const res = await this.get(`blobs/${desc.digest}`, undefined, abort);
    if (res.status !== 200) throw await this.refusal(res, `blob unknown: ${desc.digest} in`);
    const declared = Number(res.headers['content-length'] ?? NaN);
    if (!Number.isNaN(declared) && declared !== desc.size) {
      res.body.destroy();
      throw pullError(
        `${what} ${desc.digest} is ${declared} bytes, its descriptor says ${desc.size}`,
      );
    }
    const { size, digest } = await saveHashed(res, file, desc.size, `${what} ${desc.digest}`);
    verify(desc, size, digest, what);
  }
}

function checkDeclaredSize(desc: Descriptor, max: number, what: string): void {
  if (!Number.isSafeInteger(desc.size) || desc.size < 0) {
    throw pullError(`${what} ${desc.digest} has no valid size`);
  }
  if (desc.size > max) {
    throw pullError(`${what} ${desc.digest} is ${desc.size} bytes, more than the limit of ${max}`);
  }
}

function verify(desc: Descriptor, size: number, digest: string, what: string): void {
  if (size !== desc.size) {
    throw pullError(`${what} ${desc.digest} has ${size} bytes, its descriptor says ${desc.size}`);
  }
  if (digest !== desc.digest) {
    throw pullError(`digest mismatch: ${what} ${desc.digest} hashes to ${digest}`);
  }
}

/** Streams a body into a new file, hashing it, refusing more than `max` bytes. */
async function saveHashed(
  res: HttpResponse,
  file: string,
  max: number,
  what: string,
): Promise<{ size: number; digest: string }> {
  const hash = createHash('sha256');
  const handle = await fs.open(file, 'wx', 0o600);
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > max) throw pullError(`${what} is longer than the ${max} bytes it should be`);
      hash.update(chunk as Buffer);
      await handle.writeFile(chunk as Buffer);
    }
  } catch (err) {
    res.body.destroy();
    if (err instanceof RuntimeError) throw err;
    throw pullError(`downloading ${what} from ${res.url.host} failed: ${(err as Error).message}`);
  } finally {
    await handle.close();
  }
  return { size, digest: `sha256:${hash.digest('hex')}` };
}
