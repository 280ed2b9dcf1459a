import { chmodSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApiError, badRequest, pathNotFound } from '../api/errors.js';
import { byGroupResource } from '../api/resources.js';
import { systemPriorityClasses } from '../api/priority-class.js';
import { componentLogger } from '../log.js';
import type { Store } from '../store/store.js';
import { apiGroup, apiGroupList, apiVersions, resourceList, SERVER_VERSION } from './discovery.js';
import {
  handleCreate,
  handleDelete,
  handleDeleteCollection,
  handleGet,
  handleList,
  handleLog,
  handlePatch,
  handleUpdate,
  handleWatch,
  sendJson,
  type HandlerContext,
  dryRun,
} from './handlers.js';
import { proxyExec, refuseUpgrade } from './exec.js';
import { openPodLogs, type NodeDialer } from './node-proxy.js';
import { Authenticator, type UserInfo } from './auth.js';
import { JoinService, type JoinOptions } from './auth-join.js';
import { NodePasswords } from './node-password.js';
import { NodeReferences } from './node-references.js';
import { FairDispatcher } from './fairness.js';
import { authorize, forbiddenMessage, type NodeFacts, type ResourceAttributes } from './authz.js';
import { openApiV3Document, openApiV3Index } from './openapi.js';
import { OPENAPI_V2_PATH, serveOpenApiV2 } from './openapi-v2.js';
import { advertiseAddress, ensureKubernetesService } from './kubernetes-service.js';
import { Registry } from './registry.js';
import { ServiceAllocations } from './service-allocation.js';
import {
  checkAcceptable,
  decodeBody,
  parseResourcePath,
  readBody,
  type ResourceRequest,
} from './request.js';
import { Readable } from 'node:stream';
import { bindAll, BULK_BINDINGS_PATH } from './binding.js';
import { WatchCache } from './watch-cache.js';

/**
 * The API server: Kubernetes REST over HTTP, in front of the store. Every request must carry
 * one of the configured bearer tokens or a client certificate from the cluster CA (auth.ts),
 * and is authorized (authz.ts) once parsed into a resource request, then passed to the
 * handler of its verb; every ApiError becomes a Status response here. With `join` set,
 * the join paths of auth-join.ts are served too.
 */

export interface ApiServerOptions {
  store: Store;
  /** Bearer tokens that are accepted; every request needs one. */
  tokens: string[];
  host?: string;
  port?: number;
  /** Token the server presents to node agents when it proxies logs. */
  nodeToken?: string;
  /** The serving certificate (PEM chain) and its key. */
  tls: { certPem: string; keyPem: string };
  /** The range Service cluster IPs come from (default 10.43.0.0/16). */
  serviceCIDR?: string;
  /** The range Service node ports come from (default 30000-32767). */
  nodePortRange?: string;
  /** The address the `kubernetes` Service's endpoints point at (default: from `host`). */
  advertiseAddress?: string;
  /** How often reservations of service IPs and node ports are repaired (default 3 min). */
  allocationRepairMs?: number;
  /** Client certificates signed by this CA authenticate (user = CN, groups = O). */
  clientCaPem?: string;
  /** Serve `/cacerts` and the node credentials endpoint with these secrets. */
  join?: JoinOptions;
  /**
   * How to reach node agents for logs and exec: HTTPS with this client certificate,
   * checking the agent's serving certificate against `caPem`. Without it, plain HTTP with
   * `nodeToken` (the agent of `flyces up`).
   */
  nodeClientTls?: { certPem: string; keyPem: string; caPem: string };
  /**
   * Also serve plain HTTP on this Unix socket (made mode 0600), for clients in the same
   * process or on the same machine under the same user: they skip TLS and TCP, which is
   * most of the cost of a small request. Bearer tokens are required there as well.
   */
  socketPath?: string;
}

type Handler = (
  ctx: HandlerContext,
  rr: ResourceRequest,
  req: IncomingMessage,
  res: ServerResponse,
) => Promise<void>;

const HANDLERS: Record<string, Handler> = {
  get: handleGet,
  list: handleList,
  watch: handleWatch,
  create: handleCreate,
  update: handleUpdate,
  patch: handlePatch,
  delete: handleDelete,
  deletecollection: handleDeleteCollection,
};

/** Requests that go through the fair dispatcher; reads are served from the cache at once. */
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

const DEFAULT_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export class ApiServer {
  private readonly log = componentLogger('apiserver');
  private readonly cache: WatchCache;
  private readonly ctx: HandlerContext;
  private readonly authn: Authenticator;
  private readonly join?: JoinService;
  private readonly facts: NodeFacts;
  private server?: Server;
  private readonly allocations: ServiceAllocations;
  private repairTimer?: NodeJS.Timeout;
  private socketServer?: Server;
  /** Writes run at most 64 at once, the flows (user and client) taking turns. */
  private readonly fairness = new FairDispatcher();

  constructor(private readonly opts: ApiServerOptions) {
    this.cache = new WatchCache(opts.store);
    this.allocations = new ServiceAllocations(opts.store, opts);
    const registry = new Registry(opts.store, this.allocations, undefined, this.cache);
    this.authn = new Authenticator(opts.tokens);
    this.join = opts.join && new JoinService(opts.join, new NodePasswords(registry));
    const references = new NodeReferences(this.cache);
    this.facts = {
      podNode: (ns, name) => this.podNode(ns, name),
      refers: (node, ref) => references.refers(node, ref),
    };
    this.ctx = {
      registry,
      cache: this.cache,
      store: opts.store,
      podLogs: (pod, query, signal) => openPodLogs(registry, pod, query, this.nodeDialer(), signal),
    };
  }

  get registry(): Registry {
    return this.ctx.registry;
  }

  /** Loads the cache, creates the default namespaces and starts listening. */
  async start(): Promise<{ port: number }> {
    await this.cache.start();
    await this.ensureNamespaces();
    await this.ensurePriorityClasses();
    const { certPem, keyPem } = this.opts.tls;
    const clientCa = this.opts.clientCaPem;
    const server = createServer(
      clientCa
        ? { cert: certPem, key: keyPem, ca: clientCa, requestCert: true, rejectUnauthorized: false }
        : { cert: certPem, key: keyPem },
      (req, res) => void this.serve(req, res),
    );
    server.on('upgrade', (req, socket, head) => void this.serveUpgrade(req, socket, head));
    server.keepAliveTimeout = 120_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 6443, this.opts.host ?? '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    await this.startServiceAllocations(port);
    if (this.opts.socketPath) await this.listenOnSocket(this.opts.socketPath);
    this.log.info(
      { port, host: this.opts.host ?? '127.0.0.1', socket: this.opts.socketPath },
      'API server listening',
    );
    return { port };
  }

  private async listenOnSocket(path: string): Promise<void> {
    // A socket file left by a process that died: nothing listens on it any more.
    rmSync(path, { force: true });
    const server = createHttpServer((req, res) => void this.serve(req, res));
    server.on('upgrade', (req, socket, head) => void this.serveUpgrade(req, socket, head));
    server.keepAliveTimeout = 120_000;
    this.socketServer = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
  }

  async stop(): Promise<void> {
    clearInterval(this.repairTimer);
    this.cache.stop();
    const close = (server: Server | undefined) =>
      new Promise<void>((resolve) => {
        if (!server) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      });
    await Promise.all([close(this.server), close(this.socketServer)]);
  }

  /**
   * Repairs service IP and node port reservations now and every few minutes, then writes
   * the `kubernetes` Service and its endpoints for this server's port.
   */
  private async startServiceAllocations(port: number): Promise<void> {
    await this.allocations.repair(this.log);
    this.repairTimer = setInterval(() => {
      this.allocations
        .repair(this.log)
        .catch((err) => this.log.error({ err }, 'service allocation repair failed'));
    }, this.opts.allocationRepairMs ?? 180_000);
    this.repairTimer.unref();
    await ensureKubernetesService(this.ctx.registry, {
      clusterIP: this.allocations.kubernetesIP,
      address: this.opts.advertiseAddress ?? advertiseAddress(this.opts.host ?? '127.0.0.1'),
      port,
    });
  }

  private async ensureNamespaces(): Promise<void> {
    const rt = byGroupResource.get('/namespaces')!;
    for (const name of DEFAULT_NAMESPACES) {
      try {
        await this.ctx.registry.create(rt, undefined, { metadata: { name } });
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
      }
    }
  }

  /** The built-in PriorityClasses every cluster has. */
  private async ensurePriorityClasses(): Promise<void> {
    const rt = byGroupResource.get('scheduling.k8s.io/priorityclasses')!;
    for (const pc of systemPriorityClasses()) {
      try {
        await this.ctx.registry.create(rt, undefined, pc);
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
      }
    }
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      const user = this.authn.authenticate(req);
      if (this.join?.handles(url)) return await this.join.serve(req, url, res, user);
      if (!user) throw new ApiError('Unauthorized', 'Unauthorized');
      // Before the Accept check: this document is also served in protocol buffers.
      if (url.pathname === OPENAPI_V2_PATH && req.method === 'GET') {
        return serveOpenApiV2(req, res);
      }
      checkAcceptable(req.headers.accept);
      if (url.pathname === BULK_BINDINGS_PATH) {
        if (req.method !== 'POST') {
          throw new ApiError(
            'MethodNotAllowed',
            `${req.method} is not supported on ${url.pathname}; only POST is`,
          );
        }
        await this.fairness.run(flowOf(user, req), () =>
          this.serveBulkBindings(user, url, req, res),
        );
      } else if (!this.serveNonResource(req, url, res)) {
        const rr = parseResourcePath(req.method ?? 'GET', url);
        if (!rr) throw unservedSubresource(url) ?? pathNotFound();
        if (rr.subresource === 'exec' || rr.subresource === 'attach')
          throw badRequest('Upgrade request required');
        const authorized = await this.authorizeRequest(user, rr, req);
        const handler = rr.subresource === 'log' ? handleLog : HANDLERS[rr.verb];
        const serve = () => handler(this.ctx, rr, authorized, res);
        if (!WRITE_VERBS.has(rr.verb) || rr.rt.group === 'coordination.k8s.io') await serve();
        else await this.fairness.run(flowOf(user, req), serve);
      }
    } catch (err) {
      this.writeError(res, err, req);
    } finally {
      this.log.debug(
        {
          method: req.method,
          path: url.pathname,
          status: res.statusCode,
          ms: Math.round(performance.now() - started),
        },
        'request',
      );
    }
  }

  /** The scheduler's bulk binds (binding.ts), each authorized as its own pods/binding create. */
  private async serveBulkBindings(
    user: UserInfo,
    url: URL,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const dry = dryRun({ query: url.searchParams });
    const body = decodeBody(await readBody(req), req.headers['content-type']);
    const pods = byGroupResource.get('/pods')!;
    const authorizeItem = async (namespace: string, name: string) => {
      const attrs: ResourceAttributes = {
        verb: 'create',
        group: '',
        resource: 'pods',
        subresource: 'binding',
        namespace,
        name,
      };
      if (await authorize(user, attrs, this.facts)) return undefined;
      return new ApiError('Forbidden', forbiddenMessage(user, attrs));
    };
    const failed = (err: unknown, namespace: string, name: string) =>
      this.log.error({ err, pod: `${namespace}/${name}` }, 'bulk bind failed');
    sendJson(res, 200, await bindAll(this.ctx.registry, pods, body, authorizeItem, failed, dry));
  }

  /** HTTP upgrades: `pods/NAME/exec` and `pods/NAME/attach` (WebSocket; see exec.ts). */
  private async serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      const user = this.authn.authenticate(req);
      if (!user) throw new ApiError('Unauthorized', 'Unauthorized');
      const rr = parseResourcePath(req.method ?? 'GET', url);
      if (rr?.subresource !== 'exec' && rr?.subresource !== 'attach') {
        throw unservedSubresource(url) ?? pathNotFound();
      }
      // kubectl opens the upgrade with GET; Kubernetes authorizes it as create.
      await this.authorizeRequest(user, { ...rr, verb: 'create' }, req);
      await proxyExec(this.ctx.registry, this.nodeDialer(), rr, req, socket, head);
      this.log.debug({ path: url.pathname }, `${rr.subresource} proxied`);
    } catch (err) {
      const apiErr = refuseUpgrade(socket, err);
      if (apiErr.code >= 500) this.log.error({ err, path: url.pathname }, 'exec or attach failed');
    }
  }

  /** How logs and exec reach node agents. */
  private nodeDialer(): NodeDialer {
    const tls = this.opts.nodeClientTls;
    return tls ? { tls } : { token: this.opts.nodeToken ?? this.opts.tokens[0] };
  }

  /**
   * Refuses the request with 403 unless `user` may make it. For a create, the object's name
   * is in the body, which is read here and handed on in a request the handler reads again.
   */
  private async authorizeRequest(
    user: UserInfo,
    rr: ResourceRequest,
    req: IncomingMessage,
  ): Promise<IncomingMessage> {
    const attrs: ResourceAttributes = {
      verb: rr.verb,
      group: rr.rt.group,
      resource: rr.rt.plural,
      subresource: rr.subresource,
      namespace: rr.namespace,
      name: rr.name,
    };
    let forward = req;
    const needsBodyName = rr.verb === 'create' && rr.name === undefined && !isAdmin(user);
    if (needsBodyName) {
      const raw = await readBody(req);
      const body = decodeBody(raw, req.headers['content-type']) as KObjectLike | undefined;
      attrs.name = body?.metadata?.name;
      forward = replayRequest(req, raw);
    }
    if (await authorize(user, attrs, this.facts)) return forward;
    throw new ApiError('Forbidden', forbiddenMessage(user, attrs));
  }

  private async podNode(namespace: string, name: string): Promise<string | undefined> {
    try {
      const pod = await this.ctx.registry.get(byGroupResource.get('/pods')!, namespace, name);
      return (pod.spec?.nodeName as string | undefined) ?? '';
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return undefined;
      throw err;
    }
  }

  /** Discovery, version, health and OpenAPI; false when the path is none of those. */
  private serveNonResource(req: IncomingMessage, url: URL, res: ServerResponse): boolean {
    if (req.method !== 'GET') return false;
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const parts = path.split('/').filter((p) => p);
    let body: unknown;
    if (path === '/version') body = SERVER_VERSION;
    else if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return true;
    } else if (path === '/api') body = apiVersions();
    else if (path === '/apis') body = apiGroupList();
    else if (path === '/api/v1') body = resourceList('', 'v1');
    else if (parts[0] === 'apis' && parts.length === 2) body = apiGroup(parts[1]) ?? pathNotFound();
    else if (parts[0] === 'apis' && parts.length === 3)
      body = resourceList(parts[1], parts[2]) ?? pathNotFound();
    else if (path === CRD_PATH && !isWatch(url)) body = noCustomResourceDefinitions(this.ctx);
    else if (path === '/openapi/v3') body = openApiV3Index();
    else if (parts[0] === 'openapi' && parts[1] === 'v3')
      body = openApiV3Document(parts.slice(2).join('/')) ?? pathNotFound();
    else return false;
    if (body instanceof ApiError) throw body;
    sendJson(res, 200, body);
    return true;
  }

  private writeError(res: ServerResponse, err: unknown, req: IncomingMessage): void {
    let apiErr: ApiError;
    if (err instanceof ApiError) apiErr = err;
    else {
      this.log.error({ err, method: req.method, url: req.url }, 'request failed');
      apiErr = new ApiError(
        'InternalError',
        `Internal error occurred: ${(err as Error)?.message ?? err}`,
      );
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    const retryAfter = apiErr.details?.retryAfterSeconds;
    if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
    sendJson(res, apiErr.code, apiErr.toStatus());
  }
}

/** The CustomResourceDefinitions collection: listed, never in discovery (see below). */
const CRD_PATH = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

function isWatch(url: URL): boolean {
  const watch = url.searchParams.get('watch');
  return watch !== null && watch !== 'false' && watch !== '0';
}

/**
 * The list of CustomResourceDefinitions: always empty, as this cluster serves no custom
 * resources. kubectl lists them to tell a kind missing from the OpenAPI documents (a
 * ServiceAccount, say) from a custom one before it checks a file; with no answer it stops
 * the whole file, with one it names that kind as not found and applies the rest, as
 * against Kubernetes. The group is not in discovery, and nothing else under it is served.
 */
function noCustomResourceDefinitions(ctx: HandlerContext): object {
  return {
    kind: 'CustomResourceDefinitionList',
    apiVersion: 'apiextensions.k8s.io/v1',
    metadata: { resourceVersion: String(ctx.cache.revision) },
    items: [],
  };
}

interface KObjectLike {
  metadata?: { name?: string };
}

/** Who is asking, as the fair dispatcher tells flows apart: user and client. */
function flowOf(user: UserInfo, req: IncomingMessage): string {
  return `${user.name} ${req.headers['user-agent'] ?? ''}`;
}

function isAdmin(user: UserInfo): boolean {
  return user.groups.includes('system:masters');
}

/** A request whose body, already read, can be read once more by a handler. */
function replayRequest(req: IncomingMessage, body: Buffer): IncomingMessage {
  const replay = Readable.from([body]) as unknown as IncomingMessage;
  return Object.assign(replay, {
    headers: req.headers,
    method: req.method,
    url: req.url,
    socket: req.socket,
  });
}

/**
 * A pod subresource kubectl asks for that flyCes does not serve: still NotFound, as for any
 * path not served, but saying so and what to do instead, where kubectl would otherwise
 * print only "the server could not find the requested resource".
 */
function unservedSubresource(url: URL): ApiError | undefined {
  const match = /^\/api\/v1\/namespaces\/[^/]+\/pods\/[^/]+\/portforward$/.exec(url.pathname);
  if (!match) return undefined;
  return new ApiError(
    'NotFound',
    'kubectl port-forward is not supported by flyCes yet: reach the pod at its IP ' +
      '(kubectl get pod -o wide) or through a Service',
  );
}
