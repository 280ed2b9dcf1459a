import { promises as fs } from 'node:fs';
import path from 'node:path';

import type { Descriptor, OciManifest, StagedBlob } from '../archive.js';
import type { Logger } from '../../log.js';
import { noPlatformMessage, pickPlatform } from '../platform.js';
import { formatReference, type ImageReference } from '../reference.js';
import { RuntimeError, type RegistryAuth } from '../runtime.js';
import { Authorizer, findCredentials, type AuthCache } from './auth.js';
import { digestOf, MANIFEST_TYPES, RegistryClient, type FetchedManifest } from './client.js';
import type { RegistriesConfig } from './config.js';
import { endpointsFor, repositoryAt, tlsFor, type Endpoint } from './endpoints.js';
import { pullError } from './errors.js';

/**
 * Pulls one image's blobs into a staging directory: resolves the reference at the first
 * endpoint that knows it, follows an image index or manifest list to the linux/amd64
 * manifest (see platform.ts), then fetches the config and every layer the store lacks. Nothing here touches
 * the store; the caller unpacks and commits what this returns, or deletes the staging
 * directory. Once an endpoint has answered for the manifest, every blob comes from it.
 */

/** Bounds on what a registry may send. */
export const PULL_LIMITS = {
  /** A manifest, an index or an image config. */
  jsonBytes: 4 << 20,
  layers: 128,
  indexDepth: 2,
  parallelDownloads: 3,
};

export interface PullContext {
  registries: RegistriesConfig;
  /** Credentials the caller gave, tried before those in registries.yaml. */
  auths: RegistryAuth[];
  cache: AuthCache;
  /** Whether the registry itself is tried after its mirrors. */
  includeRegistry: boolean;
  maxLayerBytes: number;
  timeoutMs: number;
  log: Logger;
  /** The file of a blob the store already holds (verified when it came in), if any. */
  storedBlob(digest: string): Promise<string | undefined>;
  /** Whether the store already has the layer with this diff id unpacked. */
  hasLayer(diffId: string): Promise<boolean>;
}

/** An image whose blobs are verified; the layers the store lacks sit in staging. */
export interface PulledImage {
  /** Digest of the linux/amd64 image manifest. */
  digest: string;
  manifest: OciManifest;
  /** The parsed image config; its shape is checked by the caller. */
  config: unknown;
  /** Staged blobs by digest: the manifest, the config unless stored, missing layers. */
  blobs: Map<string, StagedBlob>;
}

const SHA256 = /^sha256:[a-f0-9]{64}$/;
const CONFIG_TYPES = new Set([
  'application/vnd.oci.image.config.v1+json',
  'application/vnd.docker.container.image.v1+json',
]);
const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
]);
const INDEX_TYPES = new Set<string>([MANIFEST_TYPES.ociIndex, MANIFEST_TYPES.dockerList]);

/** Fetches the blobs of `ref` into `staging` (an existing, empty directory). */
export async function pullToStaging(
  ref: ImageReference,
  staging: string,
  ctx: PullContext,
): Promise<PulledImage> {
  const image = formatReference(ref);
  const { client, top } = await resolveManifest(ref, image, ctx);
  const { digest, manifest, bytes } = await selectManifest(client, top, ref.digest, image);
  checkManifest(manifest, image);

  const blobs = new Map<string, StagedBlob>();
  blobs.set(digest, await writeStaged(staging, digest, bytes));
  const config = await fetchConfig(client, manifest.config, staging, blobs, ctx);
  const diffIds = (config as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids;
  await fetchLayers(client, manifest, Array.isArray(diffIds) ? diffIds : [], staging, blobs, ctx);
  return { digest, manifest, config, blobs };
}

async function clientFor(
  endpoint: Endpoint,
  ref: ImageReference,
  image: string,
  ctx: PullContext,
): Promise<RegistryClient> {
  const creds =
    findCredentials(ctx.auths, endpoint.host) ??
    (ctx.registries.configs.get(endpoint.host) ?? ctx.registries.configs.get('*'))?.auth;
  const tls = await tlsFor(ctx.registries, endpoint.host);
  const realmTls = (host: string) => tlsFor(ctx.registries, host);
  const authorizer = new Authorizer(endpoint.host, creds, ctx.cache, ctx.timeoutMs, tls, realmTls);
  const { timeoutMs } = ctx;
  const repository = repositoryAt(endpoint, ref.path);
  return new RegistryClient({ endpoint, repository, authorizer, tls, timeoutMs, image });
}

/** Asks each endpoint in turn for the reference's manifest; the first answer wins. */
async function resolveManifest(
  ref: ImageReference,
  image: string,
  ctx: PullContext,
): Promise<{ client: RegistryClient; top: FetchedManifest }> {
  const endpoints = endpointsFor(ref.domain, ctx.registries, ctx.includeRegistry);
  if (endpoints.length === 0) throw pullError(`no endpoint to pull ${image} from`);
  const failures: string[] = [];
  for (const endpoint of endpoints) {
    const client = await clientFor(endpoint, ref, image, ctx);
    try {
      const top = await client.manifest(ref.digest ?? ref.tag ?? 'latest', PULL_LIMITS.jsonBytes);
      return { client, top };
    } catch (err) {
      if (!(err instanceof RuntimeError)) throw err;
      ctx.log.debug({ endpoint: endpoint.api.href, err: err.message }, 'endpoint failed');
      failures.push(err.message);
    }
  }
  // The registry itself, tried last, usually has the most telling answer.
  const last = failures[failures.length - 1];
  const others = failures.slice(0, -1);
  throw pullError(others.length === 0 ? last : `${last}; before that: ${others.join('; ')}`);
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // Reported below, the same as JSON of the wrong shape.
  }
  throw pullError(`${what} is not a JSON object`);
}

/** Follows indexes down to the image manifest, checking every digest on the way. */
async function selectManifest(
  client: RegistryClient,
  top: FetchedManifest,
  pinned: string | undefined,
  image: string,
): Promise<{ digest: string; manifest: OciManifest; bytes: Buffer }> {
  let fetched = top;
  let expected = pinned;
  for (let depth = 0; ; depth++) {
    const digest = digestOf(fetched.bytes);
    if (expected !== undefined && digest !== expected) {
      throw pullError(`digest mismatch: manifest ${expected} of ${image} hashes to ${digest}`);
    }
    const doc = parseJson(fetched.bytes, `manifest ${digest} of ${image}`);
    const type = typeof doc.mediaType === 'string' ? doc.mediaType : fetched.mediaType;
    if (doc.schemaVersion === 1) {
      throw pullError(`${image} has a Docker schema 1 manifest, which flyCes does not support`);
    }
    const isIndex = INDEX_TYPES.has(type ?? '') || Array.isArray(doc.manifests);
    if (!isIndex) return { digest, manifest: doc as unknown as OciManifest, bytes: fetched.bytes };
    if (depth >= PULL_LIMITS.indexDepth) throw pullError(`indexes of ${image} nest too deeply`);

    const manifests = Array.isArray(doc.manifests) ? (doc.manifests as Descriptor[]) : [];
    const match = pickPlatform(manifests);
    if (!match) {
      throw pullError(
        `${image} has no linux/amd64 image in index ${digest}; ${noPlatformMessage(manifests)}`,
      );
    }
    if (!SHA256.test(String(match.digest))) {
      throw pullError(`the linux/amd64 entry of index ${digest} of ${image} has no valid digest`);
    }
    if (match.size > PULL_LIMITS.jsonBytes) {
      throw pullError(`manifest ${match.digest} of ${image} is larger than its limit`);
    }
    fetched = await client.manifest(match.digest, PULL_LIMITS.jsonBytes);
    if (fetched.bytes.length !== match.size) {
      throw pullError(`manifest ${match.digest} of ${image} does not have its declared size`);
    }
    expected = match.digest;
  }
}

function checkDescriptor(desc: unknown, what: string, types: Set<string>): void {
  const d = desc as Partial<Descriptor> | undefined;
  if (typeof d !== 'object' || d === null || !SHA256.test(String(d.digest))) {
    throw pullError(`${what} has no valid sha256 digest`);
  }
  if (!Number.isSafeInteger(d.size) || (d.size as number) < 0) {
    throw pullError(`${what} ${d.digest} has no valid size`);
  }
  if (d.mediaType !== undefined && !types.has(d.mediaType)) {
    throw pullError(`${what} ${d.digest} has media type ${d.mediaType}, which flyCes cannot use`);
  }
}

function checkManifest(manifest: OciManifest, image: string): void {
  if (manifest.schemaVersion !== 2 || !Array.isArray(manifest.layers)) {
    throw pullError(`the manifest of ${image} is not an image manifest`);
  }
  if (manifest.layers.length > PULL_LIMITS.layers) {
    throw pullError(
      `${image} has ${manifest.layers.length} layers, more than the limit of ${PULL_LIMITS.layers}`,
    );
  }
  checkDescriptor(manifest.config, `the config of ${image}`, CONFIG_TYPES);
  for (const layer of manifest.layers) checkDescriptor(layer, `a layer of ${image}`, LAYER_TYPES);
}

async function writeStaged(staging: string, digest: string, bytes: Buffer): Promise<StagedBlob> {
  const file = path.join(staging, digest.slice('sha256:'.length));
  await fs.writeFile(file, bytes, { flag: 'wx', mode: 0o600 });
  return { file, size: bytes.length };
}

/** The image config: from the store when it holds the blob, otherwise downloaded. */
async function fetchConfig(
  client: RegistryClient,
  desc: Descriptor,
  staging: string,
  blobs: Map<string, StagedBlob>,
  ctx: PullContext,
): Promise<unknown> {
  const stored = await ctx.storedBlob(desc.digest);
  // An image removed meanwhile may take the stored config with it: then it is fetched.
  let bytes = stored === undefined ? undefined : await readIfThere(stored);
  if (bytes === undefined) {
    bytes = await client.smallBlob(desc, PULL_LIMITS.jsonBytes, 'config');
    blobs.set(desc.digest, await writeStaged(staging, desc.digest, bytes));
  }
  return parseJson(bytes, `config ${desc.digest}`);
}

async function readIfThere(file: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Downloads the layers whose diff ids the store lacks, a few at a time. */
async function fetchLayers(
  client: RegistryClient,
  manifest: OciManifest,
  diffIds: unknown[],
  staging: string,
  blobs: Map<string, StagedBlob>,
  ctx: PullContext,
): Promise<void> {
  const wanted = new Map<string, Descriptor>();
  for (const [i, layer] of manifest.layers.entries()) {
    const diffId = diffIds[i];
    if (typeof diffId === 'string' && SHA256.test(diffId) && (await ctx.hasLayer(diffId))) continue;
    wanted.set(layer.digest, layer);
  }
  // One failed download stops the others instead of letting them run to the end; the
  // failure reported is that first one, not the aborts it caused.
  const abort = new AbortController();
  let first: unknown;
  const download = async (layer: Descriptor) => {
    const file = path.join(staging, layer.digest.slice('sha256:'.length));
    try {
      await client.blobToFile(layer, file, ctx.maxLayerBytes, 'layer', abort.signal);
    } catch (err) {
      if (!abort.signal.aborted) first = err;
      abort.abort();
      throw err;
    }
    blobs.set(layer.digest, { file, size: layer.size });
    ctx.log.debug({ layer: layer.digest, size: layer.size }, 'layer downloaded');
  };
  await runLimited([...wanted.values()], PULL_LIMITS.parallelDownloads, download).catch(
    (err: unknown) => {
      throw first ?? err;
    },
  );
}

/**
 * Runs `fn` over `items` with at most `limit` running at once. After the first failure
 * no new item starts; the rest finish, then that first failure is thrown.
 */
async function runLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  let failed = false;
  let failure: unknown;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        if (!failed) failure = err;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failure;
}
