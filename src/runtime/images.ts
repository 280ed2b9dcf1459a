import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';

import { componentLogger, type Logger } from '../log.js';
import {
  ArchiveError,
  readBlobJson,
  readOciArchive,
  type ArchiveContents,
  type Descriptor,
  type OciIndex,
  type OciManifest,
  type StagedBlob,
} from './archive.js';
import { exists, isErrno, KeyedMutex, listDir, readJson, writeJsonAtomic } from './fsutil.js';
import { noPlatformMessage, pickPlatform } from './platform.js';
import { processRuns } from './process-tree.js';
import { formatReference, normalizeReference, parseReference } from './reference.js';
import { AuthCache, credentialsFingerprint, secretsOf } from './registry/auth.js';
import { loadRegistriesConfig, type RegistriesConfig } from './registry/config.js';
import { pullError, redact, RegistryConfigError } from './registry/errors.js';
import { pullToStaging, type PulledImage } from './registry/pull.js';
import {
  RuntimeError,
  type ImageInfo,
  type ImageService,
  type PullImageOptions,
} from './runtime.js';
import { LayerError, unpackLayer } from './unpack.js';

/**
 * The node's image store. Layout under `root`:
 *
 *   blobs/sha256/<hex>    manifests, configs and compressed layers, by digest
 *   layers/sha256/<hex>   each layer unpacked once, named by its diff id (overlay lowerdir)
 *   images.json           the index: images (names, digests, config, layers), layer sizes
 *   tmp/                  imports and pulls in progress; moved into place once fully verified
 *
 * One ImageStore per root and process: index changes are serialised within the process,
 * not across processes.
 */

/** The parts of an image's config that decide how its containers run. */
export interface ImageConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
  StopSignal?: string;
  ExposedPorts?: Record<string, object>;
  Labels?: Record<string, string> | null;
}

/** An image as the runtime needs it: its info, its config and its unpacked layers. */
export interface StoredImage extends ImageInfo {
  config: ImageConfig;
  /** Directories of the unpacked layers, bottom layer first. */
  layerDirs: string[];
}

export interface ImageStoreOptions {
  /** Directory the store owns, e.g. DATA/images; created when missing. */
  root: string;
  logger?: Logger;
  /**
   * The node's registries.yaml (mirrors, credentials, TLS), read again at every pull so
   * edits apply without a restart; a missing file means none.
   */
  registriesConfig?: string;
  /**
   * Whether a pull may fall back to the registry itself after its mirrors (default true);
   * false is k3s's --disable-default-registry-endpoint.
   */
  defaultRegistryEndpoint?: boolean;
  /** Largest layer a pull accepts, in bytes. Default 8 GiB. */
  maxLayerBytes?: number;
  /** Milliseconds a registry request may make no progress before it fails. Default 30 s. */
  requestTimeoutMs?: number;
}

interface ImageRecord {
  id: string;
  digest: string;
  names: string[];
  config: ImageConfig;
  /** Diff ids, bottom layer first. */
  layers: string[];
  /** Every blob the image needs: manifest, config, compressed layers. */
  blobs: string[];
  createdAt: string;
}

interface StoreIndex {
  images: ImageRecord[];
  layers: Record<string, { size: number }>;
}

/**
 * An image whose manifest and config are read and whose blobs are verified and staged:
 * what an import and a pull both hand to prepareImage. Layers the store already has
 * unpacked need no blob.
 */
interface VerifiedImage {
  /** Digest of the image manifest. */
  digest: string;
  manifest: OciManifest;
  config: OciImageConfig;
  names: string[];
  blobs: Map<string, StagedBlob>;
}

/** A verified image with its missing layers unpacked into staging, not yet committed. */
interface PreparedImage {
  record: ImageRecord;
  staged: Map<string, { dir: string; size: number }>;
  blobs: Map<string, StagedBlob>;
}

interface OciImageConfig {
  os?: string;
  architecture?: string;
  config?: ImageConfig;
  rootfs?: { type?: string; diff_ids?: string[] };
}

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';
const DIGEST = /^sha256:([a-f0-9]{64})$/;
const GIB = 1024 ** 3;

function hexOf(digest: string): string {
  const match = DIGEST.exec(digest);
  if (!match) throw new ArchiveError(`unsupported digest "${digest}" (only sha256)`);
  return match[1];
}

/** Names an archive descriptor carries; a bare tag such as "latest" names nothing. */
function annotatedNames(desc: Descriptor, log: Logger): string[] {
  const names: string[] = [];
  for (const key of [REF_NAME, CONTAINERD_NAME]) {
    const value = desc.annotations?.[key];
    if (!value || !/[/:]/.test(value)) continue;
    try {
      names.push(normalizeReference(value));
    } catch {
      log.warn({ name: value }, 'ignoring invalid image name in archive');
    }
  }
  return names;
}

/** The ImageService of miniC, backed by a directory. */
export class ImageStore implements ImageService {
  readonly root: string;
  private readonly log: Logger;
  private readonly mutex = new KeyedMutex();
  /** Pulls in progress by reference, then by fingerprint of their credentials, oldest first. */
  private readonly pulls = new Map<string, Map<string, Promise<ImageInfo>>>();
  private readonly authCache = new AuthCache();
  /** The sweep of tmp/ (see sweepTmp), started by the first use of the store. */
  private swept?: Promise<void>;
  /** Layer directories containers use, from their runtime (see setLayerUsers). */
  private layerUsers?: () => Promise<Set<string>>;

  constructor(private readonly options: ImageStoreOptions) {
    this.root = path.resolve(options.root);
    this.log = options.logger ?? componentLogger('images', { root: this.root });
  }

  private get indexFile(): string {
    return path.join(this.root, 'images.json');
  }

  private blobFile(digest: string): string {
    return path.join(this.root, 'blobs', 'sha256', hexOf(digest));
  }

  /** Directory of an unpacked layer; named by hex only because overlay splits on ':'. */
  layerDir(diffId: string): string {
    return path.join(this.root, 'layers', 'sha256', hexOf(diffId));
  }

  private async ensureDirs(): Promise<void> {
    for (const dir of ['blobs/sha256', 'layers/sha256', 'tmp']) {
      await fs.mkdir(path.join(this.root, dir), { recursive: true });
    }
    await this.removeLeftovers();
  }

  /**
   * Removes what imports and pulls of ended processes left in tmp/ (see sweepTmp); runs
   * once per store, at its first import or pull or when the agent starts, whichever is
   * first.
   */
  removeLeftovers(): Promise<void> {
    this.swept ??= this.sweepTmp();
    return this.swept;
  }

  /** A new staging directory in tmp/, named with this process's id for sweepTmp. */
  private staging(kind: 'import' | 'pull'): Promise<string> {
    return fs.mkdtemp(path.join(this.root, 'tmp', `${kind}-${process.pid}-`));
  }

  /**
   * Removes, once per store, what imports and pulls of processes that are gone left in
   * tmp/: an agent killed during a pull leaves its half-fetched blobs there, which nothing
   * else would ever remove. A staging directory names its process; one whose process
   * runs (this one, or a `flyces image import` beside it) is left alone. Where that id
   * now belongs to another process, the leftovers wait for a later sweep. Directories
   * named without an id (older versions) go once they are an hour old.
   */
  private async sweepTmp(): Promise<void> {
    const tmp = path.join(this.root, 'tmp');
    for (const entry of await listDir(tmp)) {
      const pid = Number(/^[a-z]+-(\d+)-/.exec(entry)?.[1] ?? NaN);
      const file = path.join(tmp, entry);
      if (Number.isSafeInteger(pid) ? processRuns(pid) : await isRecent(file, 3_600_000)) {
        continue;
      }
      try {
        await fs.rm(file, { recursive: true, force: true });
        this.log.info({ staging: entry }, 'removed what an ended import or pull left');
      } catch (err) {
        this.log.warn({ staging: entry, err: (err as Error).message }, 'could not remove');
      }
    }
  }

  private async readIndex(): Promise<StoreIndex> {
    return (await readJson<StoreIndex>(this.indexFile)) ?? { images: [], layers: {} };
  }

  /** The index as last read, with the identity of the file it was read from. */
  private cached?: { index: StoreIndex; file: string };

  /**
   * The index for reading only (callers must not change it): parsed again only when the
   * file is another one than last time. Every writer, in this process or another (`flyces
   * image import`), replaces the file by a rename, which gives it a new inode and times;
   * a stat from memory is far cheaper than reading and parsing it on every container start.
   */
  private async indexForReading(): Promise<StoreIndex> {
    let identity: string;
    try {
      const st = statSync(this.indexFile);
      identity = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return { images: [], layers: {} };
      throw err;
    }
    if (this.cached?.file === identity) return this.cached.index;
    const index = await this.readIndex();
    this.cached = { index, file: identity };
    return index;
  }

  /**
   * Imports every image of the OCI archive at `file`. With `name`, the archive must hold
   * exactly one image, which is stored under that name instead of the archive's names.
   * Nothing reaches the store unless every blob and layer digest checks out.
   */
  async importArchive(file: string, name?: string): Promise<ImageInfo[]> {
    const override = name === undefined ? undefined : normalizeReference(name);
    let staging: string | undefined;
    try {
      await this.ensureDirs();
      staging = await this.staging('import');
      const contents = await readOciArchive(file, staging);
      const targets = await this.collectManifests(contents);
      if (override !== undefined && targets.length !== 1) {
        throw new ArchiveError(`archive holds ${targets.length} images; a name needs exactly one`);
      }
      const prepared: PreparedImage[] = [];
      for (const target of targets) {
        const names = override !== undefined ? [override] : target.names;
        const verified = await readArchiveImage(contents, target.desc, names);
        prepared.push(await this.prepareImage(verified, staging));
      }
      const infos = await this.mutex.run('index', () => this.commit(prepared));
      this.log.info({ file, images: infos.map((i) => i.names.join(',') || i.id) }, 'imported');
      return infos;
    } catch (err) {
      throw storeFault(err, this.root) ?? err;
    } finally {
      if (staging !== undefined) await fs.rm(staging, { recursive: true, force: true });
    }
  }

  /** The image manifests an archive's index points at, with the names it gives them. */
  private async collectManifests(
    contents: ArchiveContents,
  ): Promise<{ desc: Descriptor; names: string[] }[]> {
    const byDigest = new Map<string, { desc: Descriptor; names: string[] }>();
    for (const top of contents.index.manifests) {
      const desc = await this.platformManifest(contents, top, 0);
      const entry = byDigest.get(desc.digest) ?? { desc, names: [] };
      for (const n of annotatedNames(top, this.log)) {
        if (!entry.names.includes(n)) entry.names.push(n);
      }
      byDigest.set(desc.digest, entry);
    }
    if (byDigest.size === 0) throw new ArchiveError('archive index lists no images');
    return [...byDigest.values()];
  }

  /** Follows nested indexes down to the linux/amd64 image manifest. */
  private async platformManifest(
    contents: ArchiveContents,
    desc: Descriptor,
    depth: number,
  ): Promise<Descriptor> {
    const blob = await readBlobJson<OciIndex & { config?: unknown }>(contents, desc);
    const isIndex = INDEX_TYPES.has(desc.mediaType ?? '') || Array.isArray(blob.manifests);
    if (!isIndex) return desc;
    if (depth >= 3) throw new ArchiveError('image indexes nest too deeply');

    const manifests = Array.isArray(blob.manifests) ? blob.manifests : [];
    const match = pickPlatform(manifests);
    if (!match) {
      throw new ArchiveError(
        `index ${desc.digest} has no linux/amd64 manifest; ${noPlatformMessage(manifests)}`,
      );
    }
    return this.platformManifest(contents, match, depth + 1);
  }

  /** Checks one verified image and unpacks the layers the store lacks into staging. */
  private async prepareImage(image: VerifiedImage, staging: string): Promise<PreparedImage> {
    const { manifest, config, digest } = image;
    checkConfig(config, manifest, digest);
    const diffIds = config.rootfs?.diff_ids ?? [];

    const staged = new Map<string, { dir: string; size: number }>();
    for (const [i, layer] of manifest.layers.entries()) {
      const diffId = diffIds[i];
      if (staged.has(diffId) || (await exists(this.layerDir(diffId)))) continue;
      const blob = image.blobs.get(layer.digest);
      if (!blob) throw new ArchiveError(`layer ${layer.digest} is missing`);
      if (blob.size !== layer.size) {
        throw new ArchiveError(`layer ${layer.digest} has the wrong size`);
      }
      staged.set(diffId, await this.unpackStaged(blob, layer.digest, diffId, staging));
    }

    const record: ImageRecord = {
      id: manifest.config.digest,
      digest,
      names: image.names,
      config: config.config ?? {},
      layers: diffIds,
      blobs: [digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)],
      createdAt: new Date().toISOString(),
    };
    return { record, staged, blobs: image.blobs };
  }

  /** Unpacks one layer blob into a new staging directory; checks its diff id. */
  private async unpackStaged(
    blob: StagedBlob,
    digest: string,
    diffId: string,
    staging: string,
  ): Promise<{ dir: string; size: number }> {
    const dir = path.join(staging, `layer-${hexOf(diffId)}`);
    await fs.mkdir(dir, { mode: 0o755 });
    const result = await unpackLayer(blob.file, dir, this.log).catch((err: unknown) => {
      if (err instanceof LayerError) throw new ArchiveError(`layer ${digest}: ${err.message}`);
      throw err;
    });
    if (result.diffId !== diffId) {
      throw new ArchiveError(
        `layer ${digest} unpacks to ${result.diffId}, but the config says ${diffId}`,
      );
    }
    return { dir, size: result.size };
  }

  /**
   * Moves verified blobs and layers into place, then records the images in the index. The
   * one way images enter the store, for imports and pulls alike; runs under the index lock.
   */
  private async commit(prepared: PreparedImage[]): Promise<ImageInfo[]> {
    const index = await this.readIndex();
    // What this commit moved into place: taken out again if the index cannot be written (a
    // full disk), as no index would name it and nothing would ever collect it.
    const placed: string[] = [];
    const place = async (from: string, target: string) => {
      if (await exists(target)) return;
      await fs.rename(from, target);
      placed.push(target);
    };
    try {
      for (const image of prepared) await this.placeImage(index, image, place);
      await writeJsonAtomic(this.indexFile, index);
    } catch (err) {
      for (const target of placed) await fs.rm(target, { recursive: true, force: true });
      throw err;
    }
    return prepared.map((p) => {
      const stored = index.images.find((i) => i.id === p.record.id) as ImageRecord;
      return this.info(index, stored);
    });
  }

  /** Moves one image's blobs and layers into place with `place` and adds it to `index`. */
  private async placeImage(
    index: StoreIndex,
    { record, staged, blobs }: PreparedImage,
    place: (from: string, target: string) => Promise<void>,
  ): Promise<void> {
    for (const digest of record.blobs) {
      const blob = blobs.get(digest);
      if (blob) await place(blob.file, this.blobFile(digest));
    }
    for (const [diffId, layer] of staged) {
      await place(layer.dir, this.layerDir(diffId));
      index.layers[diffId] ??= { size: layer.size };
    }
    for (const diffId of record.layers) {
      // A layer seen present while preparing may have been collected since.
      if (!staged.has(diffId) && !(await exists(this.layerDir(diffId)))) {
        throw new StoreChangedError(`layer ${diffId} was removed meanwhile; try again`);
      }
      index.layers[diffId] ??= { size: 0 };
    }
    addImage(index, record);
  }

  private info(index: StoreIndex, record: ImageRecord): ImageInfo {
    const size = record.layers.reduce((sum, d) => sum + (index.layers[d]?.size ?? 0), 0);
    return { names: [...record.names], digest: record.digest, id: record.id, size };
  }

  /**
   * Pulls `ref` from its registry or mirrors and stores it under the normalised reference.
   * Concurrent calls for one reference with the same credentials share one pull; a call
   * with other credentials (or none) waits for the pull in progress, then pulls with its
   * own, so the registry checks every caller's access (a layer already fetched is not
   * fetched again). Joining another's pull would hand a private image to a pod whose
   * credentials the registry refuses, even under imagePullPolicy Always.
   * Layers the store has are not downloaded again. Throws RuntimeError: 'InvalidImageName'
   * for a malformed reference, 'ErrImagePull' for anything the registry, the network or
   * the content got wrong, with the store unchanged; messages carry no secrets.
   */
  pullImage(ref: string, opts: PullImageOptions = {}): Promise<ImageInfo> {
    let name: string;
    try {
      name = normalizeReference(ref);
    } catch (err) {
      return Promise.reject(err);
    }
    const who = credentialsFingerprint(opts.auth ?? []);
    const running = this.pulls.get(name) ?? new Map<string, Promise<ImageInfo>>();
    const same = running.get(who);
    if (same) return same;
    const before = [...running.values()].at(-1)?.catch(() => undefined);
    const pull = (async () => {
      await before;
      return this.pullOnce(name, opts);
    })().finally(() => {
      running.delete(who);
      if (running.size === 0 && this.pulls.get(name) === running) this.pulls.delete(name);
    });
    running.set(who, pull);
    this.pulls.set(name, running);
    return pull;
  }

  /**
   * One pull, started over once if the store lost a layer it counted on meanwhile (an
   * image removed, by the image GC or a user, while this pull was under way): the second
   * attempt downloads what is gone instead of failing the pod's pull.
   */
  private async pullOnce(name: string, opts: PullImageOptions): Promise<ImageInfo> {
    try {
      return await this.pullAttempt(name, opts);
    } catch (err) {
      if (!(err instanceof StoreChangedError)) throw err;
      this.log.info({ image: name, why: err.message }, 'pulling again: the store changed');
      return this.pullAttempt(name, opts).catch((again: unknown) => {
        throw again instanceof StoreChangedError ? pullError(again.message) : again;
      });
    }
  }

  private async pullAttempt(name: string, opts: PullImageOptions): Promise<ImageInfo> {
    const auths = opts.auth ?? [];
    let registries: RegistriesConfig | undefined;
    let staging: string | undefined;
    try {
      // Inside the try: on a full disk even the staging directory may not be made.
      await this.ensureDirs();
      staging = await this.staging('pull');
      registries = await loadRegistriesConfig(this.options.registriesConfig);
      const pulled = await pullToStaging(parseReference(name), staging, {
        registries,
        auths,
        cache: this.authCache,
        includeRegistry: this.options.defaultRegistryEndpoint ?? true,
        maxLayerBytes: this.options.maxLayerBytes ?? 8 * GIB,
        timeoutMs: this.options.requestTimeoutMs ?? 30_000,
        log: this.log.child({ image: name }),
        storedBlob: async (d) => ((await exists(this.blobFile(d))) ? this.blobFile(d) : undefined),
        hasLayer: (diffId) => exists(this.layerDir(diffId)),
      });
      const prepared = await this.prepareImage(pulledImage(pulled, name), staging);
      const [info] = await this.mutex.run('index', () => this.commit([prepared]));
      this.log.info({ image: name, digest: info.digest, id: info.id }, 'pulled');
      return info;
    } catch (err) {
      if (err instanceof StoreChangedError) throw err;
      const secrets = [...secretsOf(auths), ...configSecrets(registries)];
      throw asPullError(storeFault(err, this.root) ?? err, secrets);
    } finally {
      if (staging !== undefined) await fs.rm(staging, { recursive: true, force: true });
    }
  }

  /** The image a reference resolves to, after normalisation; also accepts an image id. */
  async getImage(ref: string): Promise<ImageInfo | undefined> {
    const index = await this.indexForReading();
    const record = findImage(index, ref);
    return record && this.info(index, record);
  }

  /**
   * Like getImage, with what a container needs: the image config and the unpacked layer
   * directories. Throws RuntimeError('InvalidImageName') for a malformed reference (as
   * getImage does). With `claim`, finding the image and claiming it are one step as far as
   * removals go: `claim` runs before any later removal looks for the layers in use (which
   * the runtime reports through setLayerUsers, claims included), so either the image is
   * found and its layers stay, or it was removed first and is not found.
   */
  async resolveImage(
    ref: string,
    claim?: (image: StoredImage) => void,
  ): Promise<StoredImage | undefined> {
    if (!claim) return this.lookUp(ref);
    return this.mutex.run('index', async () => {
      const image = await this.lookUp(ref);
      if (image) claim(image);
      return image;
    });
  }

  private async lookUp(ref: string): Promise<StoredImage | undefined> {
    const index = await this.indexForReading();
    const record = findImage(index, ref);
    if (!record) return undefined;
    const layerDirs = record.layers.map((d) => this.layerDir(d));
    return { ...this.info(index, record), config: structuredClone(record.config), layerDirs };
  }

  async listImages(): Promise<ImageInfo[]> {
    const index = await this.readIndex();
    return index.images.map((r) => this.info(index, r));
  }

  /**
   * Tells the store how to learn which layer directories containers stack: their root
   * file systems are mounted in their own namespaces, out of the host's mount table.
   */
  setLayerUsers(users: () => Promise<Set<string>>): void {
    this.layerUsers = users;
  }

  /**
   * Removes a name from its image, or the whole image when given its id or its last name;
   * then deletes blobs and layers no image needs any more. Absent images are not an error.
   * A layer a container still uses (an overlay lowerdir) is kept until a later call.
   */
  async removeImage(ref: string): Promise<void> {
    await this.mutex.run('index', async () => {
      const index = await this.readIndex();
      const record = findImage(index, ref);
      if (!record) return;
      const name = DIGEST.test(ref) ? undefined : normalizeReference(ref);
      record.names = name === undefined ? [] : record.names.filter((n) => n !== name);
      if (record.names.length === 0) index.images = index.images.filter((i) => i !== record);
      await this.collectGarbage(index);
      this.log.info({ ref, id: record.id }, 'image removed');
    });
  }

  private async collectGarbage(index: StoreIndex): Promise<void> {
    const usedLayers = new Set(index.images.flatMap((i) => i.layers));
    const usedBlobs = new Set(index.images.flatMap((i) => i.blobs));
    // Containers' overlays: in their own namespaces (see setLayerUsers), or on the host for
    // containers made before the overlay moved there.
    const mounts = await fs.readFile('/proc/self/mountinfo', 'utf8');
    const containers = (await this.layerUsers?.()) ?? new Set<string>();
    const doomed: string[] = [];
    for (const diffId of Object.keys(index.layers)) {
      const dir = this.layerDir(diffId);
      if (usedLayers.has(diffId) || containers.has(dir) || mounts.includes(dir)) continue;
      delete index.layers[diffId];
      doomed.push(this.layerDir(diffId));
    }
    // The index never names a file that is gone: write it first, delete after.
    await writeJsonAtomic(this.indexFile, index);
    for (const dir of doomed) await fs.rm(dir, { recursive: true, force: true });

    const blobDir = path.join(this.root, 'blobs', 'sha256');
    for (const hex of await fs.readdir(blobDir).catch(() => [] as string[])) {
      if (!usedBlobs.has(`sha256:${hex}`)) await fs.rm(path.join(blobDir, hex), { force: true });
    }
  }
}

/** A layer an import or pull counted on was removed before it committed; try again. */
class StoreChangedError extends ArchiveError {}

/** An archive image's manifest and config, read from its verified blobs. */
async function readArchiveImage(
  contents: ArchiveContents,
  desc: Descriptor,
  names: string[],
): Promise<VerifiedImage> {
  const manifest = await readBlobJson<OciManifest>(contents, desc);
  if (!manifest.config || !Array.isArray(manifest.layers)) {
    throw new ArchiveError(`manifest ${desc.digest} is not an image manifest`);
  }
  const config = await readBlobJson<OciImageConfig>(contents, manifest.config);
  return { digest: desc.digest, manifest, config, names, blobs: contents.blobs };
}

function pulledImage(pulled: PulledImage, name: string): VerifiedImage {
  return { ...pulled, config: pulled.config as OciImageConfig, names: [name] };
}

function configSecrets(config: RegistriesConfig | undefined): string[] {
  if (!config) return [];
  return [...config.configs.values()].flatMap((c) => (c.auth ? [c.auth.password] : []));
}

/**
 * A failure of the store's own files (a full disk: ENOSPC) as an ArchiveError that names
 * the store, so that a pull ends in ErrImagePull with the cause rather than in a bare
 * system error the pod's status never shows; undefined for any other error.
 */
function storeFault(err: unknown, root: string): ArchiveError | undefined {
  if (!(err instanceof Error) || err instanceof RuntimeError) return undefined;
  if (typeof (err as NodeJS.ErrnoException).code !== 'string') return undefined;
  return new ArchiveError(`image store ${root}: ${err.message}`);
}

/** Any failure of a pull as ErrImagePull, with every known secret blotted out. */
function asPullError(err: unknown, secrets: string[]): unknown {
  if (err instanceof RuntimeError) {
    if (err.code !== 'ErrImagePull') return err;
    return pullError(redact(err.message, secrets));
  }
  if (err instanceof ArchiveError || err instanceof RegistryConfigError) {
    return pullError(redact(err.message, secrets));
  }
  return err;
}

function checkConfig(config: OciImageConfig, manifest: OciManifest, digest: string): void {
  if (config.os && config.os !== 'linux') {
    throw new ArchiveError(`image ${digest} is for ${config.os}, not linux`);
  }
  if (config.architecture && config.architecture !== 'amd64') {
    throw new ArchiveError(`image ${digest} is for ${config.architecture}, not amd64`);
  }
  const diffIds = config.rootfs?.diff_ids;
  if (config.rootfs?.type !== 'layers' || !Array.isArray(diffIds)) {
    throw new ArchiveError(`image ${digest} config has no rootfs.diff_ids`);
  }
  if (diffIds.length !== manifest.layers.length) {
    throw new ArchiveError(
      `image ${digest} has ${manifest.layers.length} layers, config lists ${diffIds.length}`,
    );
  }
  for (const d of diffIds) hexOf(d);
}

/** Adds an image to the index; a name moves to the new image from any image that had it. */
function addImage(index: StoreIndex, record: ImageRecord): void {
  for (const other of index.images) {
    if (other.id !== record.id) other.names = other.names.filter((n) => !record.names.includes(n));
  }
  const existing = index.images.find((i) => i.id === record.id);
  if (!existing) {
    index.images.push(record);
    return;
  }
  existing.digest = record.digest;
  existing.blobs = [...new Set([...existing.blobs, ...record.blobs])];
  for (const n of record.names) if (!existing.names.includes(n)) existing.names.push(n);
}

function findImage(index: StoreIndex, ref: string): ImageRecord | undefined {
  if (DIGEST.test(ref)) return index.images.find((i) => i.id === ref);
  const parsed = parseReference(ref);
  const canonical = formatReference(parsed);
  const byName = index.images.find((i) => i.names.includes(canonical));
  if (byName || parsed.digest === undefined) return byName;
  const repo = `${parsed.domain}/${parsed.path}`;
  return index.images.find(
    (i) =>
      i.digest === parsed.digest &&
      i.names.some((n) => n.startsWith(`${repo}:`) || n.startsWith(`${repo}@`)),
  );
}

/** Whether `file` changed within the last `ms` milliseconds; false when it is gone. */
async function isRecent(file: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await fs.stat(file)).mtimeMs < ms;
  } catch {
    return false;
  }
}
