import { chmodSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApiError, badRequest } from '../api/errors.js';
import { byGroupResource } from '../api/resources.js';
import { BearerTokens } from '../util/bearer.js';
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
} from './handlers.js';
import { proxyExec, refuseUpgrade } from './exec.js';
import { openPodLogs } from './node-proxy.js';
import { openApiV3Document, openApiV3Index } from './openapi.js';
import { Registry } from './registry.js';
import { checkAcceptable, parseResourcePath, type ResourceRequest } from './request.js';
import { WatchCache } from './watch-cache.js';

/**
 * The API server: Kubernetes REST over HTTP, in front of the store. Every request must carry
 * one of the configured bearer tokens. Requests are parsed into a resource request and passed
 * to the handler of their verb; every ApiError becomes a Status response here.
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

const DEFAULT_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export class ApiServer {
  private readonly log = componentLogger('apiserver');
  private readonly cache: WatchCache;
  private readonly ctx: HandlerContext;
  private readonly tokens: BearerTokens;
  private server?: Server;
  private socketServer?: Server;

  constructor(private readonly opts: ApiServerOptions) {
    this.cache = new WatchCache(opts.store);
    const registry = new Registry(opts.store);
    this.tokens = new BearerTokens(opts.tokens);
    this.ctx = {
      registry,
      cache: this.cache,
      store: opts.store,
      podLogs: (pod, query) => openPodLogs(registry, pod, query, opts.nodeToken ?? opts.tokens[0]),
    };
  }

  get registry(): Registry {
    return this.ctx.registry;
  }

  /** Loads the cache, creates the default namespaces and starts listening. */
  async start(): Promise<{ port: number }> {
    await this.cache.start();
    await this.ensureNamespaces();
    const { certPem, keyPem } = this.opts.tls;
    const server = createServer(
      { cert: certPem, key: keyPem },
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
    this.cache.stop();
    const close = (server: Server | undefined) =>
      new Promise<void>((resolve) => {
        if (!server) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      });
    await Promise.all([close(this.server), close(this.socketServer)]);
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

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (!this.tokens.accepts(req.headers.authorization))
        throw new ApiError('Unauthorized', 'Unauthorized');
      checkAcceptable(req.headers.accept);
      if (!this.serveNonResource(req, url, res)) {
        const rr = parseResourcePath(req.method ?? 'GET', url);
        if (!rr) throw new ApiError('NotFound', 'the server could not find the requested resource');
        if (rr.subresource === 'exec') throw badRequest('Upgrade request required');
        const handler = rr.subresource === 'log' ? handleLog : HANDLERS[rr.verb];
        await handler(this.ctx, rr, req, res);
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

  /** HTTP upgrades: only `pods/NAME/exec` (WebSocket; see exec.ts) is served. */
  private async serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (!this.tokens.accepts(req.headers.authorization))
        throw new ApiError('Unauthorized', 'Unauthorized');
      const rr = parseResourcePath(req.method ?? 'GET', url);
      if (rr?.subresource !== 'exec') {
        throw new ApiError('NotFound', 'the server could not find the requested resource');
      }
      const token = this.opts.nodeToken ?? this.opts.tokens[0];
      await proxyExec(this.ctx.registry, token, rr, req, socket, head);
      this.log.debug({ path: url.pathname }, 'exec proxied');
    } catch (err) {
      const apiErr = refuseUpgrade(socket, err);
      if (apiErr.code >= 500) this.log.error({ err, path: url.pathname }, 'exec failed');
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
    else if (parts[0] === 'apis' && parts.length === 2) body = apiGroup(parts[1]) ?? notFoundBody();
    else if (parts[0] === 'apis' && parts.length === 3)
      body = resourceList(parts[1], parts[2]) ?? notFoundBody();
    else if (path === '/openapi/v3') body = openApiV3Index();
    else if (parts[0] === 'openapi' && parts[1] === 'v3')
      body = openApiV3Document(parts.slice(2).join('/')) ?? notFoundBody();
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
    sendJson(res, apiErr.code, apiErr.toStatus());
  }
}

function notFoundBody(): ApiError {
  return new ApiError('NotFound', 'the server could not find the requested resource');
}
