import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { pino } from 'pino';
import tar from 'tar-stream';

import { issueCert, newClusterCa } from '../../apiserver/pki.js';
import { ImageStore, type ImageStoreOptions } from '../images.js';
import { RuntimeError } from '../runtime.js';

/**
 * Pulls from registries that misbehave, each an in-process HTTP server on a loopback port
 * of its own (17950-17959): token services that fail or answer oddly, indexes without the
 * node's platform, lying digests, bodies cut short. Every case checks the pull ends in
 * ErrImagePull with a message that says what went wrong, and that the store is unchanged.
 */

const PORTS = { registry: 17950, token: 17951, tlsRegistry: 17952, tlsRealm: 17953 };
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

const sha256 = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
}

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const [name, body] of Object.entries(files)) pack.entry({ name, mode: 0o644 }, body);
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/** A registry of blobs and manifests in memory; `intercept` answers first when set. */
class FakeRegistry {
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, { bytes: Buffer; type: string }>();
  readonly seen: string[] = [];
  intercept?: Handler;
  server = http.createServer((req, res) => this.handle(req, res));

  handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.seen.push(`${req.method} ${req.url}`);
    if (this.intercept?.(req, res)) return;
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(req.url ?? '');
    if (!m) {
      res.writeHead(req.url === '/v2/' ? 200 : 404).end();
      return;
    }
    if (m[2] === 'blobs') {
      const blob = this.blobs.get(m[3]);
      if (!blob) return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(blob);
      return;
    }
    const manifest = this.manifests.get(`${m[1]}:${m[3]}`) ?? this.manifests.get(m[3]);
    if (!manifest) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': manifest.type }).end(manifest.bytes);
  }

  blob(bytes: Buffer, mediaType: string): Descriptor {
    this.blobs.set(sha256(bytes), bytes);
    return { mediaType, digest: sha256(bytes), size: bytes.length };
  }

  /** Stores a manifest under its digest and, given one, a `repo:tag`. */
  manifest(doc: unknown, type: string, repoTag?: string): Descriptor {
    const bytes = Buffer.from(JSON.stringify(doc));
    const entry = { bytes, type };
    this.manifests.set(sha256(bytes), entry);
    if (repoTag) this.manifests.set(repoTag, entry);
    return { mediaType: type, digest: sha256(bytes), size: bytes.length };
  }

  /** An image of one gzip layer holding `files`; returns its manifest's descriptor. */
  async image(
    files: Record<string, string>,
    repoTag?: string,
    platform = { os: 'linux', architecture: 'amd64' },
  ): Promise<Descriptor> {
    const layer = await tarOf(files);
    const config = Buffer.from(
      JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }),
    );
    const doc = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: this.blob(config, OCI_CONFIG),
      layers: [this.blob(gzipSync(layer), OCI_LAYER_GZIP)],
    };
    return this.manifest(doc, OCI_MANIFEST, repoTag);
  }
}

function listen(server: http.Server | https.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

async function rejectsPull(promise: Promise<unknown>, pattern: RegExp): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof RuntimeError, `not a RuntimeError: ${String(err)}`);
    assert.equal(err.code, 'ErrImagePull');
    assert.match(err.message, pattern);
    return err.message;
  }
  assert.fail('the pull succeeded');
}

const silent = pino({ level: 'silent' });

test('pulls from hostile registries', async (t) => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-hostile-registry-'));
  const registry = new FakeRegistry();
  let tokenAnswer: Handler = () => false;
  const tokens = { requests: [] as string[] };
  const tokenServer = http.createServer((req, res) => {
    tokens.requests.push(req.url ?? '');
    if (!tokenAnswer(req, res)) res.writeHead(500).end();
  });
  await listen(registry.server, PORTS.registry);
  await listen(tokenServer, PORTS.token);
  t.after(async () => {
    for (const server of [registry.server, tokenServer]) {
      server.closeAllConnections();
      server.close();
    }
    await fs.rm(tmp, { recursive: true, force: true });
  });
  let stores = 0;
  const newStore = (extra: Partial<ImageStoreOptions> = {}) =>
    new ImageStore({ root: path.join(tmp, `store-${++stores}`), logger: silent, ...extra });
  const host = `127.0.0.1:${PORTS.registry}`;

  await registry.image({ 'a.txt': 'a' }, 'app:1');

  await t.test('a plain image pulls', async () => {
    const info = await newStore().pullImage(`${host}/app:1`);
    assert.deepEqual(info.names, [`${host}/app:1`]);
  });

  /** Demands a Bearer token for `repo`, fetched from the token server; `valid` says which. */
  const demandToken = (repo: string, valid: (token: string) => boolean): Handler => {
    return (req, res) => {
      if (!req.url?.startsWith(`/v2/${repo}/`)) return false;
      const token = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
      if (valid(token)) return false;
      const realm = `http://127.0.0.1:${PORTS.token}/token`;
      res.writeHead(401, {
        'WWW-Authenticate': `Bearer realm="${realm}",service="fake",scope="repository:${repo}:pull"`,
      });
      res.end();
      return true;
    };
  };

  await t.test('token services that fail or answer oddly', async (st) => {
    st.after(() => (registry.intercept = undefined));
    await registry.image({ 'b.txt': 'b' }, 'org/team/app:1');
    registry.intercept = demandToken('org/team/app', (tok) => tok === 'good');
    const ref = `${host}/org/team/app:1`;
    const answer =
      (status: number, body: string): Handler =>
      (_req, res) => {
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(body);
        return true;
      };
    const cases: [string, Handler, RegExp][] = [
      ['500', answer(500, 'oops'), /token service 127\.0\.0\.1:17951 answered HTTP 500/],
      ['not JSON', answer(200, '<html>'), /token service .* answered with invalid JSON/],
      ['JSON null', answer(200, 'null'), /token service .* answered without a token/],
      ['JSON string', answer(200, '"good"'), /token service .* answered without a token/],
      ['token a number', answer(200, '{"token": 5}'), /answered without a token/],
    ];
    for (const [name, handler, pattern] of cases) {
      tokenAnswer = handler;
      await rejectsPull(newStore().pullImage(ref), pattern).catch((err: Error) => {
        throw new Error(`${name}: ${err.message}`);
      });
    }
    tokens.requests.length = 0;
    tokenAnswer = answer(200, '{"access_token": "good"}');
    await newStore().pullImage(ref);
    assert.match(tokens.requests[0], /scope=repository%3Aorg%2Fteam%2Fapp%3Apull/);
  });

  await t.test(
    'a token the registry stops taking is fetched again once, not in a loop',
    async (st) => {
      st.after(() => (registry.intercept = undefined));
      await registry.image({ 'c.txt': 'c' }, 'expiring:1');
      let issued = 0;
      tokenAnswer = (_req, res) => {
        res.writeHead(200).end(JSON.stringify({ token: `t${++issued}`, expires_in: 300 }));
        return true;
      };
      let accepted = new Set(['t1']);
      registry.intercept = demandToken('expiring', (tok) => accepted.has(tok));
      const store = newStore();
      await store.pullImage(`${host}/expiring:1`);
      assert.equal(issued, 1);
      // The cached t1 is refused now: one fresh token (t2) is fetched and used.
      accepted = new Set(['t2']);
      await store.pullImage(`${host}/expiring:1`);
      assert.equal(issued, 2);
      // Every token refused: one fresh token, then the pull fails.
      accepted = new Set();
      registry.seen.length = 0;
      await rejectsPull(store.pullImage(`${host}/expiring:1`), /^unauthorized: /);
      assert.equal(issued, 3);
      assert.equal(registry.seen.length, 2);
    },
  );

  await t.test('platforms of an index', async () => {
    const amd = await registry.image({ 'amd.txt': 'amd64' }, undefined);
    const arm = await registry.image({ 'arm.txt': 'arm' }, undefined, {
      os: 'linux',
      architecture: 'arm64',
    });
    const entry = (d: Descriptor, os: string, architecture: string, variant?: string) => ({
      ...d,
      platform: { os, architecture, ...(variant ? { variant } : {}) },
    });
    const index = (tag: string, manifests: unknown[]) =>
      registry.manifest({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }, OCI_INDEX, tag);
    index('multi:none', [
      entry(arm, 'linux', 'arm64', 'v8'),
      entry(amd, 'windows', 'amd64'),
      entry(arm, 'linux', 'arm', 'v7'),
    ]);
    await rejectsPull(
      newStore().pullImage(`${host}/multi:none`),
      /has no linux\/amd64 image in index sha256:[a-f0-9]{64}; it has linux\/arm64\/v8, windows\/amd64, linux\/arm\/v7$/,
    );
    index('multi:both', [entry(arm, 'linux', 'arm64', 'v8'), entry(amd, 'linux', 'amd64')]);
    assert.equal((await newStore().pullImage(`${host}/multi:both`)).digest, amd.digest);
  });

  await t.test('manifests that lie or cannot be used', async () => {
    await registry.image({ 'd.txt': 'd' }, 'lies:good');
    const doc = JSON.parse(registry.manifests.get('lies:good')!.bytes.toString()) as {
      config: Descriptor;
      layers: Descriptor[];
    };
    const layer = doc.layers[0];
    const flipped = (d: Descriptor) => ({ ...d, digest: `sha256:${'0'.repeat(64)}` });
    registry.manifest(
      { schemaVersion: 1, name: 'lies', tag: 's1', fsLayers: [] },
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
      'lies:schema1',
    );
    registry.manifest(
      { ...doc, config: { ...doc.config, mediaType: 'application/vnd.cncf.helm.config.v1+json' } },
      OCI_MANIFEST,
      'lies:helm',
    );
    registry.manifest({ ...doc, config: flipped(doc.config) }, OCI_MANIFEST, 'lies:config');
    registry.manifest({ ...doc, layers: [flipped(layer)] }, OCI_MANIFEST, 'lies:layer');
    registry.manifest(
      { ...doc, layers: [{ ...layer, size: layer.size + 1 }] },
      OCI_MANIFEST,
      'lies:size',
    );
    // A config whose diff_id is not what the layer unpacks to.
    const config = Buffer.from(
      JSON.stringify({
        os: 'linux',
        architecture: 'amd64',
        rootfs: { type: 'layers', diff_ids: [`sha256:${'1'.repeat(64)}`] },
      }),
    );
    registry.manifest(
      { ...doc, config: registry.blob(config, OCI_CONFIG) },
      OCI_MANIFEST,
      'lies:diffid',
    );
    const cases: [string, RegExp][] = [
      ['schema1', /has a Docker schema 1 manifest, which flyCes does not support/],
      [
        'helm',
        /config of .* has media type application\/vnd\.cncf\.helm\.config\.v1\+json, which flyCes cannot use/,
      ],
      ['config', /blob unknown: sha256:0{64}/],
      ['layer', /blob unknown: sha256:0{64}/],
      ['size', /layer sha256:[a-f0-9]{64} (is|has) \d+ bytes, its descriptor says \d+/],
      ['diffid', /unpacks to sha256:[a-f0-9]{64}, but the config says sha256:1{64}/],
    ];
    const store = newStore();
    await store.pullImage(`${host}/app:1`);
    for (const [tag, pattern] of cases) {
      await rejectsPull(store.pullImage(`${host}/lies:${tag}`), pattern);
    }
    // The registry serves another blob for a digest: its bytes hash to something else.
    registry.blobs.set(doc.config.digest, Buffer.from('{"os":"linux"}'));
    await rejectsPull(
      store.pullImage(`${host}/lies:good`),
      /config sha256:[a-f0-9]{64} has \d+ bytes|digest mismatch: config/,
    );
    assert.equal((await store.listImages()).length, 1);
    assert.deepEqual(await fs.readdir(path.join(store.root, 'tmp')), []);
  });

  await t.test(
    'a blob cut short, a manifest with another Content-Type, name:tag@digest',
    async (st) => {
      st.after(() => (registry.intercept = undefined));
      const first = await registry.image({ 'e.txt': 'e'.repeat(200_000) }, 'cut:1');
      const doc = JSON.parse(registry.manifests.get('cut:1')!.bytes.toString()) as {
        layers: Descriptor[];
      };
      const layer = doc.layers[0];
      registry.intercept = (req, res) => {
        if (!req.url?.endsWith(`/blobs/${layer.digest}`)) return false;
        const bytes = registry.blobs.get(layer.digest)!;
        res.writeHead(200, { 'Content-Length': bytes.length });
        res.write(bytes.subarray(0, bytes.length >> 1), () => res.destroy());
        return true;
      };
      const store = newStore();
      await rejectsPull(
        store.pullImage(`${host}/cut:1`),
        /downloading layer sha256:[a-f0-9]{64} from 127\.0\.0\.1:17950 failed/,
      );
      assert.deepEqual(await fs.readdir(path.join(store.root, 'tmp')), []);
      registry.intercept = (req, res) => {
        if (!req.url?.endsWith(`/manifests/1`) || !req.url.includes('/cut/')) return false;
        res
          .writeHead(200, { 'Content-Type': 'text/html' })
          .end(registry.manifests.get('cut:1')!.bytes);
        return true;
      };
      assert.equal((await store.pullImage(`${host}/cut:1`)).digest, first.digest);
      registry.intercept = undefined;
      const other = await registry.image({ 'f.txt': 'f' }, 'cut:2');
      const pinned = `${host}/cut:2@${first.digest}`;
      registry.seen.length = 0;
      const info = await newStore().pullImage(pinned);
      assert.equal(info.digest, first.digest);
      assert.notEqual(info.digest, other.digest);
      assert.deepEqual(info.names, [pinned]);
      assert.equal(registry.seen[0], `GET /v2/cut/manifests/${first.digest}`);
    },
  );

  await t.test('an image removed while a pull of it is starting', async (st) => {
    st.after(() => (registry.intercept = undefined));
    await registry.image({ 'g.txt': 'g' }, 'gone:1');
    const store = newStore();
    const ref = `${host}/gone:1`;
    const first = await store.pullImage(ref);
    // The pull (as under imagePullPolicy Always) finds the layer and config stored; the image
    // is removed, layers and blobs with it, before the registry answers for the manifest.
    let removal: Promise<void> | undefined;
    registry.intercept = (req) => {
      if (req.url === '/v2/gone/manifests/1' && !removal) removal = store.removeImage(ref);
      return false;
    };
    const again = await store.pullImage(ref);
    assert.ok(removal, 'the image was removed during the pull');
    await removal;
    assert.equal(again.id, first.id);
    const image = await store.resolveImage(ref);
    assert.equal(await fs.readFile(path.join(image!.layerDirs[0], 'g.txt'), 'utf8'), 'g');
  });

  await t.test('a token realm over TLS on another loopback port', async (st) => {
    const ca = await newClusterCa('flyces-hostile-ca');
    const serving = await issueCert(ca, {
      commonName: '127.0.0.1',
      hosts: ['127.0.0.1'],
      usage: 'server',
      lifetimeMs: 3600_000,
    });
    const tls = { cert: serving.certPem, key: serving.keyPem! };
    const secure = new FakeRegistry();
    await secure.image({ 'h.txt': 'h' }, 'tls/app:1');
    const realmPort = PORTS.tlsRealm;
    secure.intercept = (req, res) => {
      if (req.headers.authorization === 'Bearer tls-token') return false;
      const realm = `https://127.0.0.1:${realmPort}/token`;
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${realm}",service="s"` }).end();
      return true;
    };
    const registryServer = https.createServer(tls, (req, res) => secure.handle(req, res));
    const realmServer = https.createServer(tls, (_req, res) => {
      res.writeHead(200).end('{"token":"tls-token"}');
    });
    await listen(registryServer, PORTS.tlsRegistry);
    await listen(realmServer, realmPort);
    st.after(() => {
      for (const server of [registryServer, realmServer]) {
        server.closeAllConnections();
        server.close();
      }
    });
    const caFile = path.join(tmp, 'hostile-ca.crt');
    await fs.writeFile(caFile, ca.certPem);
    const secureHost = `127.0.0.1:${PORTS.tlsRegistry}`;
    const config = async (name: string, text: string) => {
      const file = path.join(tmp, name);
      await fs.writeFile(file, text);
      return newStore({ registriesConfig: file });
    };
    // The registry's CA serves its token realm too, as containerd's client for the host does.
    const own = await config(
      'realm-own.yaml',
      `configs:\n  "${secureHost}":\n    tls: { ca_file: ${caFile} }\n`,
    );
    assert.ok(await own.pullImage(`${secureHost}/tls/app:1`));
    // Settings of the realm's own host are used when registries.yaml has them.
    const both = await config(
      'realm-both.yaml',
      `configs:\n  "${secureHost}":\n    tls: { ca_file: ${caFile} }\n` +
        `  "127.0.0.1:${realmPort}":\n    tls: { ca_file: ${caFile}.missing }\n`,
    );
    await assert.rejects(
      both.pullImage(`${secureHost}/tls/app:1`),
      new RegExp(`configs\\."127\\.0\\.0\\.1:${realmPort}"\\.tls\\.ca_file: cannot read`),
    );
  });

  await t.test('a mirror with a rewrite is asked for the rewritten repository', async () => {
    const file = path.join(tmp, 'registries-rewrite.yaml');
    await fs.writeFile(
      file,
      `mirrors:\n  registry.flyces.test:\n    endpoint: ["http://${host}"]\n` +
        '    rewrite:\n      "^upstream/(.*)$": "$1"\n',
    );
    // Without the registry itself: registry.flyces.test is never looked up.
    const store = newStore({ registriesConfig: file, defaultRegistryEndpoint: false });
    registry.seen.length = 0;
    const info = await store.pullImage('registry.flyces.test/upstream/app:1');
    assert.deepEqual(info.names, ['registry.flyces.test/upstream/app:1']);
    assert.equal(registry.seen[0], 'GET /v2/app/manifests/1');
  });
});
