import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

import tar from 'tar-stream';

import { issueCert, newClusterCa } from '../src/apiserver/pki.js';
import { ImageStore, type ImageStoreOptions } from '../src/runtime/images.js';
import { parseDockerConfigJson } from '../src/runtime/registry/auth.js';
import { rejectsPull as failedPull, startRegistry } from './helpers/registry.js';

/**
 * Pulls from real registries on loopback: Debian's docker-registry twice (anonymous, and
 * htpasswd basic auth, on one storage directory), plus a small front written here that
 * forwards to the anonymous one and can demand Bearer tokens (from a token server written
 * here), count requests, flip a byte of a blob or serve an oversized manifest. Images are
 * pushed with skopeo (OCI and Docker schema 2) and through the distribution API by hand
 * (indexes, manifest lists, synthetic layers). Nothing leaves 127.0.0.1.
 */

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const USER = 'puller';
const PASSWORD = 'S3cret-pass-word';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

const sha256 = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** The test's HTTP servers: a front to the anonymous registry and a token service. */
interface Front {
  port: number;
  /** "METHOD path" of every request, in order. */
  seen: string[];
  /** A blob digest whose body gets one byte flipped. */
  tamper?: string;
  /** Whether Bearer tokens from `tokens` are demanded. */
  bearer: boolean;
  tokens: Set<string>;
  tokenRequests: number;
  tokenPort: number;
}

const BIG_MANIFEST = '/v2/big/manifests/1';
const HANGING_MANIFEST = '/v2/hang/manifests/1';

function listen(server: http.Server, servers: http.Server[]): Promise<number> {
  servers.push(server);
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

function forward(
  front: Front,
  upstream: number,
  req: http.IncomingMessage,
  res: http.ServerResponse,
) {
  const headers = { ...req.headers, host: `127.0.0.1:${upstream}` };
  delete headers.authorization;
  const out = http.request(
    { host: '127.0.0.1', port: upstream, path: req.url, method: req.method, headers },
    async (up) => {
      if (!front.tamper || !req.url?.endsWith(`/blobs/${front.tamper}`) || up.statusCode !== 200) {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      for await (const c of up) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      body[body.length >> 1] ^= 0xff;
      res.writeHead(200, up.headers);
      res.end(body);
    },
  );
  out.on('error', () => res.destroy());
  req.pipe(out);
}

async function startFront(upstream: number, servers: http.Server[]): Promise<Front> {
  const front: Front = {
    port: 0,
    seen: [],
    bearer: false,
    tokens: new Set(),
    tokenRequests: 0,
    tokenPort: 0,
  };
  const tokenServer = http.createServer((req, res) => {
    front.tokenRequests++;
    const expected = 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end('{"details":"incorrect username or password"}');
      return;
    }
    const token = `tok-${front.tokenRequests}-${Math.random().toString(16).slice(2)}`;
    front.tokens.add(token);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 300 }));
  });
  front.tokenPort = await listen(tokenServer, servers);

  const server = http.createServer((req, res) => {
    front.seen.push(`${req.method} ${req.url}`);
    const token = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
    if (front.bearer && !front.tokens.has(token)) {
      const realm = `http://127.0.0.1:${front.tokenPort}/token`;
      const name = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(req.url ?? '')?.[1] ?? '';
      const scope = `repository:${name}:pull`;
      res.writeHead(401, {
        'Content-Type': 'application/json',
        'WWW-Authenticate': `Bearer realm="${realm}",service="flyces-test",scope="${scope}"`,
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    // A registry that quotes the Authorization header it was sent in its refusal.
    if (req.url?.startsWith('/v2/echo/')) {
      res.writeHead(401, {
        'Content-Type': 'application/json',
        'WWW-Authenticate': 'Basic realm="flyces-test"',
      });
      const message = `refused ${req.headers.authorization ?? 'nothing'}`;
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message }] }));
      return;
    }
    // Never answers; the client's timeout must end the request.
    if (req.url === HANGING_MANIFEST) return;
    if (req.url === BIG_MANIFEST) {
      // Chunked, so only counting the bytes can stop it.
      res.writeHead(200, { 'Content-Type': OCI_MANIFEST });
      const chunk = Buffer.alloc(1 << 20, 0x20);
      for (let i = 0; i < 6; i++) res.write(chunk);
      res.end('{}');
      return;
    }
    forward(front, upstream, req, res);
  });
  front.port = await listen(server, servers);
  return front;
}

/** Uploads a blob to a registry in one request; returns its descriptor. */
async function pushBlob(port: number, name: string, body: Buffer, mediaType: string) {
  const digest = sha256(body);
  const start = await fetch(`http://127.0.0.1:${port}/v2/${name}/blobs/uploads/`, {
    method: 'POST',
  });
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get('location') ?? '', `http://127.0.0.1:${port}`);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    body: new Uint8Array(body),
    headers: { 'Content-Type': 'application/octet-stream' },
  });
  assert.equal(put.status, 201, await put.text());
  return { mediaType, digest, size: body.length };
}

async function putManifest(port: number, name: string, tag: string, doc: object, type: string) {
  const body = Buffer.from(JSON.stringify(doc));
  const res = await fetch(`http://127.0.0.1:${port}/v2/${name}/manifests/${tag}`, {
    method: 'PUT',
    body: new Uint8Array(body),
    headers: { 'Content-Type': type },
  });
  assert.equal(res.status, 201, await res.text());
  return { mediaType: type, digest: sha256(body), size: body.length };
}

async function getManifestDigest(port: number, name: string, tag: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/v2/${name}/manifests/${tag}`, {
    headers: { Accept: `${OCI_MANIFEST}, ${DOCKER_MANIFEST}` },
  });
  assert.equal(res.status, 200);
  return sha256(Buffer.from(await res.arrayBuffer()));
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

/** Pushes an OCI image of the given layers (plain tars, gzipped unless `plain`). */
async function pushSynthetic(
  port: number,
  name: string,
  tag: string,
  layers: Buffer[],
  opts: { plain?: boolean; repeat?: number } = {},
) {
  const descs: { mediaType: string; digest: string; size: number }[] = [];
  for (const layer of layers) {
    const blob = opts.plain ? layer : gzipSync(layer);
    const type = `application/vnd.oci.image.layer.v1.tar${opts.plain ? '' : '+gzip'}`;
    descs.push(await pushBlob(port, name, blob, type));
  }
  const repeat = opts.repeat ?? 1;
  const allDescs = Array.from({ length: repeat }, () => descs).flat();
  const diffIds = Array.from({ length: repeat }, () => layers.map(sha256)).flat();
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
  const configDesc = await pushBlob(port, name, config, 'application/vnd.oci.image.config.v1+json');
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: configDesc,
    layers: allDescs,
  };
  return putManifest(port, name, tag, manifest, OCI_MANIFEST);
}

/** Every file and directory below `dir` with its size, for before/after comparisons. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { recursive: true })) {
    const st = await fs.lstat(path.join(dir, String(e)));
    out.push(`${String(e)} ${st.isDirectory() ? 'dir' : st.size}`);
  }
  return out.sort();
}

/** A pull that must fail with ErrImagePull saying `pattern`, and give away no credential. */
async function rejectsPull(promise: Promise<unknown>, pattern: RegExp): Promise<string> {
  const message = await failedPull(promise, pattern);
  assert.ok(!message.includes(PASSWORD), 'the message leaks the password');
  assert.ok(!/tok-\d/.test(message), 'the message leaks a token');
  return message;
}

/** The value of a settled promise, or its error thrown again. */
function settled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === 'rejected') throw result.reason;
  return result.value;
}

const layerGets = (front: Front) => front.seen.filter((s) => /\/blobs\/sha256:/.test(s));

test('pulls images from OCI registries on loopback', async (t) => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flyces-registry-test-'));
  const children: ChildProcess[] = [];
  const servers: http.Server[] = [];
  t.after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
    for (const child of children) {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    }
    await fs.rm(tmp, { recursive: true, force: true });
  });

  let stores = 0;
  const newStore = (extra: Partial<ImageStoreOptions> = {}) =>
    new ImageStore({ root: path.join(tmp, `store-${++stores}`), ...extra });

  const storage = path.join(tmp, 'storage');
  const htpasswd = path.join(tmp, 'htpasswd');
  await fs.writeFile(htpasswd, (await exec('htpasswd', ['-Bbn', USER, PASSWORD])).stdout);
  const plain = await startRegistry(tmp, 'plain', storage, undefined, children);
  const basic = await startRegistry(tmp, 'basic', storage, htpasswd, children);
  const front = await startFront(plain, servers);

  const archive = path.join(tmp, 'web.tar');
  const policy = path.join(tmp, 'policy.json');
  await exec(path.join(repo, 'examples', 'build-image.sh'), [archive]);
  await fs.writeFile(policy, '{"default":[{"type":"insecureAcceptAnything"}]}');
  const push = (format: string, dest: string) =>
    exec('skopeo', [
      '--policy',
      policy,
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      '--format',
      format,
      `oci-archive:${archive}`,
      `docker://127.0.0.1:${plain}/${dest}`,
    ]);
  await push('oci', 'web:oci');
  await push('v2s2', 'web:v2');
  await push('v2s2', 'library/flyces-web:1');
  const ociDigest = await getManifestDigest(plain, 'web', 'oci');
  const v2Digest = await getManifestDigest(plain, 'web', 'v2');
  assert.notEqual(ociDigest, v2Digest);

  const web = (port: number, tag: string) => `127.0.0.1:${port}/web:${tag}`;

  await t.test('pulls an OCI image by tag, anonymously', async () => {
    const store = newStore();
    const info = await store.pullImage(web(plain, 'oci'));
    assert.deepEqual(info.names, [web(plain, 'oci')]);
    assert.equal(info.digest, ociDigest);
    assert.ok(info.size > 100_000);
    const image = await store.resolveImage(web(plain, 'oci'));
    const busybox = path.join(image?.layerDirs[0] ?? '', 'bin', 'busybox');
    assert.ok((await fs.stat(busybox)).size > 100_000);
    assert.deepEqual(image?.config.Env, ['PATH=/bin']);
    assert.deepEqual(await fs.readdir(path.join(store.root, 'tmp')), []);
  });

  await t.test('pulls a Docker schema 2 image by tag and by digest', async () => {
    const store = newStore();
    const byTag = await store.pullImage(web(plain, 'v2'));
    assert.equal(byTag.digest, v2Digest);
    const pinned = `127.0.0.1:${plain}/web@${v2Digest}`;
    const byDigest = await store.pullImage(pinned);
    assert.equal(byDigest.id, byTag.id);
    assert.deepEqual(byDigest.names, [web(plain, 'v2'), pinned]);
    assert.equal((await store.getImage(pinned))?.id, byTag.id);
  });

  await t.test('selects linux/amd64 from an OCI index and a Docker manifest list', async () => {
    const entry = (digest: string, type: string, architecture: string) => ({
      mediaType: type,
      digest,
      size: 0,
      platform: { os: 'linux', architecture },
    });
    const sizeOf = async (tag: string) =>
      (
        await fetch(`http://127.0.0.1:${plain}/v2/web/manifests/${tag}`, {
          headers: { Accept: `${OCI_MANIFEST}, ${DOCKER_MANIFEST}` },
        }).then((r) => r.arrayBuffer())
      ).byteLength;
    const oci = { ...entry(ociDigest, OCI_MANIFEST, 'amd64'), size: await sizeOf('oci') };
    const v2 = { ...entry(v2Digest, DOCKER_MANIFEST, 'amd64'), size: await sizeOf('v2') };
    const indexType = 'application/vnd.oci.image.index.v1+json';
    const listType = 'application/vnd.docker.distribution.manifest.list.v2+json';
    const arm = (d: typeof oci) => ({ ...d, platform: { os: 'linux', architecture: 'arm64' } });
    const index = { schemaVersion: 2, mediaType: indexType, manifests: [arm(v2), oci] };
    const list = { schemaVersion: 2, mediaType: listType, manifests: [arm(oci), v2] };
    const indexDesc = await putManifest(plain, 'web', 'index', index, indexType);
    await putManifest(plain, 'web', 'list', list, listType);

    const store = newStore();
    assert.equal((await store.pullImage(web(plain, 'index'))).digest, ociDigest);
    assert.equal((await store.pullImage(web(plain, 'list'))).digest, v2Digest);
    const pinned = `127.0.0.1:${plain}/web@${indexDesc.digest}`;
    assert.equal((await store.pullImage(pinned)).digest, ociDigest);
  });

  await t.test('pulls uncompressed layers and checks them against diff_ids', async () => {
    const layer = await tarOf({ 'hello.txt': 'hello from a plain tar layer\n' });
    await pushSynthetic(plain, 'synth/plain', '1', [layer], { plain: true });
    const store = newStore();
    const info = await store.pullImage(`127.0.0.1:${plain}/synth/plain:1`);
    const image = await store.resolveImage(info.id);
    const text = await fs.readFile(path.join(image?.layerDirs[0] ?? '', 'hello.txt'), 'utf8');
    assert.equal(text, 'hello from a plain tar layer\n');
  });

  await t.test(
    'basic auth: credentials from the caller, a pull secret or registries.yaml',
    async () => {
      const ref = web(basic, 'oci');
      await rejectsPull(newStore().pullImage(ref), /^unauthorized: .*requires credentials/);
      const wrong = [{ registry: `127.0.0.1:${basic}`, username: USER, password: 'wrong-pass' }];
      const message = await rejectsPull(
        newStore().pullImage(ref, { auth: wrong }),
        /^unauthorized: 127\.0\.0\.1:\d+ refused the credentials of user "puller" \(authentication required\)$/,
      );
      assert.ok(!message.includes('wrong-pass'));

      const right = [{ registry: `127.0.0.1:${basic}`, username: USER, password: PASSWORD }];
      assert.equal((await newStore().pullImage(ref, { auth: right })).digest, ociDigest);

      const secret = JSON.stringify({
        auths: {
          [`http://127.0.0.1:${basic}/v1/`]: {
            auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64'),
          },
        },
      });
      const auth = parseDockerConfigJson(secret);
      assert.equal((await newStore().pullImage(ref, { auth })).digest, ociDigest);

      const registriesConfig = path.join(tmp, 'registries-basic.yaml');
      await fs.writeFile(
        registriesConfig,
        `configs:\n  "127.0.0.1:${basic}":\n    auth:\n      username: ${USER}\n` +
          `      password: ${PASSWORD}\n`,
      );
      assert.equal((await newStore({ registriesConfig }).pullImage(ref)).digest, ociDigest);
      await fs.writeFile(registriesConfig, `configs:\n  "127.0.0.1:${basic}":\n    auth: {}\n`);
      await rejectsPull(
        newStore({ registriesConfig }).pullImage(ref),
        /registries-basic\.yaml: configs\."127\.0\.0\.1:\d+"\.auth needs username/,
      );
    },
  );

  await t.test('bearer tokens: fetched with credentials, cached per scope', async (st) => {
    front.bearer = true;
    st.after(() => (front.bearer = false));
    const ref = web(front.port, 'oci');
    const registry = `127.0.0.1:${front.port}`;
    await rejectsPull(
      newStore().pullImage(ref, { auth: [{ registry, username: USER, password: 'nope-nope' }] }),
      /^unauthorized: the token service 127\.0\.0\.1:\d+ refused the credentials/,
    );

    const store = newStore();
    const auth = [{ registry, username: USER, password: PASSWORD }];
    front.tokenRequests = 0;
    front.seen.length = 0;
    assert.equal((await store.pullImage(ref, { auth })).digest, ociDigest);
    assert.equal(front.tokenRequests, 1);
    assert.ok(layerGets(front).length >= 2, 'config and layer were fetched');

    front.seen.length = 0;
    assert.equal((await store.pullImage(ref, { auth })).digest, ociDigest);
    assert.equal(front.tokenRequests, 1, 'the cached token was used');
    assert.deepEqual(front.seen, [`GET /v2/web/manifests/oci`], 'no layer downloaded again');
  });

  await t.test('a registry that quotes the credentials back does not get them shown', async () => {
    const registry = `127.0.0.1:${front.port}`;
    const basic = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
    const message = await rejectsPull(
      newStore().pullImage(`${registry}/echo/web:1`, {
        auth: [{ registry, username: USER, password: PASSWORD }],
      }),
      /^unauthorized: 127\.0\.0\.1:\d+ refused the credentials of user "puller" \(refused Basic \*\*\*\)$/,
    );
    assert.ok(!message.includes(basic));
  });

  await t.test('an unknown tag is "manifest unknown"', async () => {
    await rejectsPull(
      newStore().pullImage(`127.0.0.1:${plain}/web:nope`),
      /^manifest unknown: 127\.0\.0\.1:\d+\/web:nope$/,
    );
  });

  await t.test('registries.yaml mirrors docker.io to a loopback registry', async () => {
    const registriesConfig = path.join(tmp, 'registries-mirror.yaml');
    await fs.writeFile(
      registriesConfig,
      `mirrors:\n  docker.io:\n    endpoint:\n      - "http://127.0.0.1:${front.port}"\n`,
    );
    // Without the registry itself, a broken mirror can never reach out to Docker Hub.
    const store = newStore({ registriesConfig, defaultRegistryEndpoint: false });
    front.seen.length = 0;
    const info = await store.pullImage('flyces-web:1');
    assert.deepEqual(info.names, ['docker.io/library/flyces-web:1']);
    assert.equal(front.seen[0], 'GET /v2/library/flyces-web/manifests/1');
    await rejectsPull(store.pullImage('flyces-web:2'), /^manifest unknown: .*\(mirror 127/);
  });

  await t.test('registries.yaml TLS: a private CA, a client certificate, skip-verify', async () => {
    const day = 24 * 3600_000;
    const ca = await newClusterCa('flyces-test-registry-ca');
    const serving = await issueCert(ca, {
      commonName: 'registry',
      hosts: ['127.0.0.1'],
      usage: 'server',
      lifetimeMs: day,
    });
    const clientCa = await newClusterCa('flyces-test-client-ca');
    const client = await issueCert(clientCa, {
      commonName: 'puller',
      usage: 'client',
      lifetimeMs: day,
    });
    const file = async (name: string, text: string) => {
      const f = path.join(tmp, name);
      await fs.writeFile(f, text, { mode: 0o600 });
      return f;
    };
    const caFile = await file('registry-ca.crt', ca.certPem);
    const clientCert = await file('client.crt', client.certPem);
    const clientKey = await file('client.key', client.keyPem!);
    const port = await startRegistry(tmp, 'tls', storage, undefined, children, {
      certificate: await file('registry.crt', serving.certPem),
      key: await file('registry.key', serving.keyPem!),
      clientCa: await file('client-ca.crt', clientCa.certPem),
    });
    // A name that is not loopback, served only by the https mirror: the registry itself is
    // left out (defaultRegistryEndpoint false), so nothing is looked up or sent elsewhere.
    const ref = 'registry.flyces.test/web:oci';
    let configs = 0;
    const storeWith = async (tls: string) => {
      const registriesConfig = await file(
        `registries-tls-${++configs}.yaml`,
        'mirrors:\n  registry.flyces.test:\n' +
          `    endpoint: ["https://127.0.0.1:${port}"]\n` +
          (tls ? `configs:\n  "127.0.0.1:${port}":\n    tls:\n${tls}` : ''),
      );
      return newStore({ registriesConfig, defaultRegistryEndpoint: false });
    };
    const withClient = `      cert_file: ${clientCert}\n      key_file: ${clientKey}\n`;

    const info = await (await storeWith(`      ca_file: ${caFile}\n` + withClient)).pullImage(ref);
    assert.deepEqual(info.names, [ref]);
    assert.equal(info.digest, ociDigest);

    const tlsSetting = `registries\\.yaml's configs\\."127\\.0\\.0\\.1:${port}"\\.tls`;
    await rejectsPull(
      (await storeWith('')).pullImage(ref),
      new RegExp(
        "^cannot reach 127\\.0\\.0\\.1:\\d+: SELF_SIGNED_CERT_IN_CHAIN: the registry's " +
          `certificate is not signed by a CA this node trusts .*; name its CA in ${tlsSetting}\\.ca_file`,
      ),
    );
    await rejectsPull(
      (await storeWith(`      ca_file: ${caFile}\n`)).pullImage(ref),
      new RegExp(
        '^cannot reach 127\\.0\\.0\\.1:\\d+: ERR_SSL_\\w+: the registry refused the TLS ' +
          `handshake: it wants a client certificate it accepts; give one in ${tlsSetting}\\.cert_file`,
      ),
    );
    const skip = await storeWith('      insecure_skip_verify: true\n' + withClient);
    assert.equal((await skip.pullImage(ref)).digest, ociDigest);

    const missing = path.join(tmp, 'no-such-ca.crt');
    await assert.rejects((await storeWith(`      ca_file: ${missing}\n`)).pullImage(ref), (err) => {
      assert.match(
        (err as Error).message,
        new RegExp(`configs\\."127\\.0\\.0\\.1:${port}"\\.tls\\.ca_file: cannot read`),
      );
      return true;
    });
  });

  await t.test('a tampered layer fails the pull and leaves the store unchanged', async (st) => {
    const store = newStore();
    await store.pullImage(`127.0.0.1:${plain}/synth/plain:1`);
    const before = await snapshot(store.root);
    const manifest = JSON.parse(
      await (
        await fetch(`http://127.0.0.1:${plain}/v2/web/manifests/oci`, {
          headers: { Accept: OCI_MANIFEST },
        })
      ).text(),
    ) as { layers: { digest: string }[] };
    front.tamper = manifest.layers[0].digest;
    st.after(() => (front.tamper = undefined));
    await rejectsPull(store.pullImage(web(front.port, 'oci')), /^digest mismatch: layer sha256:/);
    assert.deepEqual(await snapshot(store.root), before);
  });

  await t.test('bounds: manifest size, layer size, layer count, time', async () => {
    const store = newStore();
    await store.pullImage(`127.0.0.1:${plain}/synth/plain:1`);
    const before = await snapshot(store.root);
    await rejectsPull(
      store.pullImage(`127.0.0.1:${front.port}/big:1`),
      /manifest 127\.0\.0\.1:\d+\/big:1 is larger than the limit of 4194304 bytes/,
    );
    const small = newStore({ maxLayerBytes: 1000 });
    await rejectsPull(
      small.pullImage(web(plain, 'oci')),
      /^layer sha256:[a-f0-9]+ is \d+ bytes, more than the limit of 1000$/,
    );
    const impatient = newStore({ requestTimeoutMs: 300 });
    await rejectsPull(
      impatient.pullImage(`127.0.0.1:${front.port}/hang:1`),
      /^cannot reach 127\.0\.0\.1:\d+: no answer from .* within 300 ms$/,
    );
    const layer = await tarOf({ 'x.txt': 'x' });
    await pushSynthetic(plain, 'synth/many', '1', [layer], { repeat: 129 });
    await rejectsPull(
      store.pullImage(`127.0.0.1:${plain}/synth/many:1`),
      /has 129 layers, more than the limit of 128/,
    );
    assert.deepEqual(await snapshot(store.root), before);
  });

  await t.test('concurrent pulls of one reference share one download', async () => {
    const store = newStore();
    front.seen.length = 0;
    const ref = web(front.port, 'oci');
    const [a, b] = await Promise.all([store.pullImage(ref), store.pullImage(ref)]);
    assert.deepEqual(a, b);
    const manifests = front.seen.filter((s) => s.includes('/manifests/'));
    assert.equal(manifests.length, 1);
    const blobs = layerGets(front);
    assert.equal(blobs.length, new Set(blobs).size, 'no blob fetched twice');

    front.seen.length = 0;
    await store.pullImage(ref);
    assert.deepEqual(layerGets(front), [], 'a second pull downloads no blob');
  });

  await t.test('a concurrent pull with other credentials is checked with its own', async () => {
    const store = newStore();
    const ref = web(basic, 'oci');
    const registry = `127.0.0.1:${basic}`;
    const right = [{ registry, username: USER, password: PASSWORD }];
    const wrong = [{ registry, username: USER, password: 'wrong-pass' }];
    const pulls = [
      store.pullImage(ref, { auth: right }),
      store.pullImage(ref, { auth: wrong }),
      store.pullImage(ref),
      store.pullImage(ref, { auth: [{ ...right[0] }] }),
    ];
    assert.equal(pulls[3], pulls[0], 'the same credentials share one pull');
    const [good, bad, none, again] = await Promise.allSettled(pulls);
    assert.equal(good.status === 'fulfilled' && good.value.digest, ociDigest);
    assert.equal(again.status === 'fulfilled' && again.value.digest, ociDigest);
    await rejectsPull(Promise.resolve(bad).then(settled), /refused the credentials/);
    await rejectsPull(Promise.resolve(none).then(settled), /requires credentials/);
  });
});
