import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent, request } from 'node:https';
import {
  ApiError,
  errorFromResponse,
  type StatusObject,
  type StatusReason,
} from '../api/errors.js';
import { apiVersionOf, type ResourceType } from '../api/resources.js';
import type { KObject } from '../api/types.js';

/**
 * The REST client every flyCes component uses to talk to the API server: HTTPS with the
 * cluster CA and a bearer token or a client certificate, JSON bodies, errors turned back into ApiError so callers
 * can test `err.reason === 'Conflict'`.
 */

export interface ClientConfig {
  /** Base URL, e.g. https://127.0.0.1:6443. */
  server: string;
  /** Bearer token; leave empty to authenticate with `clientCert` only. */
  token: string;
  /** Client certificate (PEM chain) and its key, presented in the TLS handshake. */
  clientCert?: { certPem: string; keyPem: string };
  /** PEM of the CA that signed the server's certificate. */
  caPem: string;
  /** Sent as User-Agent, so the server's logs say who called. */
  userAgent?: string;
  /**
   * Talk plain HTTP over this Unix socket of the API server instead of HTTPS to `server`
   * (see ApiServerOptions.socketPath); `server` then only names the host in requests.
   */
  socketPath?: string;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  /** Per-request timeout in ms (default 30 s); watches pass 0 for none. */
  timeoutMs?: number;
  /** Accept header; default application/json. */
  accept?: string;
}

export interface ListResult<T = KObject> {
  items: T[];
  resourceVersion: string;
}

export interface WatchEvent<T = KObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface WatchHandle {
  stop(): void;
  /** Resolves when the stream ends, for any reason (rejects never). */
  done: Promise<void>;
}

/** The path of a resource collection, object or subresource. */
export function resourcePath(
  rt: ResourceType,
  namespace?: string,
  name?: string,
  sub?: string,
): string {
  const base = rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
  let path = base;
  if (rt.namespaced && namespace) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${rt.plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (sub) path += `/${sub}`;
  return path;
}

function queryString(query: RequestOptions['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const text = params.toString();
  return text ? `?${text}` : '';
}

export class KubeClient {
  private agent: Agent | HttpAgent;
  private readonly send: typeof request;
  private readonly url: URL;

  constructor(readonly config: ClientConfig) {
    this.url = new URL(config.server);
    this.send = config.socketPath ? (httpRequest as typeof request) : request;
    this.agent = KubeClient.newAgent(config);
  }

  /**
   * The connection pool: plain HTTP over the API server's Unix socket when one is given
   * (same machine, same user), HTTPS checking the cluster CA otherwise, with the client
   * certificate when there is one.
   */
  private static newAgent(config: ClientConfig): Agent | HttpAgent {
    if (config.socketPath) return new HttpAgent({ keepAlive: true, maxSockets: 64 });
    const cert = config.clientCert;
    return new Agent({
      keepAlive: true,
      maxSockets: 64,
      ca: config.caPem,
      ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}),
    });
  }

  /**
   * Switches to another client certificate (after a renewal). Open connections, watches
   * included, are closed, as the server knows a connection by the certificate it was opened
   * with; informers reconnect with the new one. A request in flight fails and is retried by
   * its caller as any network failure would be.
   */
  setClientCertificate(cert: { certPem: string; keyPem: string }): void {
    const old = this.agent;
    this.config.clientCert = cert;
    this.agent = KubeClient.newAgent(this.config);
    old.destroy();
  }

  close(): void {
    this.agent.destroy();
  }

  /** Sends a request and resolves with the response stream, after checking its status. */
  open(method: string, path: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = {
      Accept: opts.accept ?? 'application/json',
      'User-Agent': this.config.userAgent ?? 'flyces',
    };
    if (this.config.token) headers.Authorization = `Bearer ${this.config.token}`;
    if (body !== undefined) {
      headers['Content-Type'] = opts.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve, reject) => {
      const where = this.config.socketPath
        ? { socketPath: this.config.socketPath, host: this.url.hostname }
        : { host: this.url.hostname, port: this.url.port || 443 };
      const req = this.send(
        {
          ...where,
          method,
          path: path + queryString(opts.query),
          headers,
          agent: this.agent,
        },
        (res) => {
          if ((res.statusCode ?? 500) < 400) return resolve(res);
          readAll(res).then(
            (text) => reject(errorFromResponse(res.statusCode ?? 500, text)),
            reject,
          );
        },
      );
      const timeout = opts.timeoutMs ?? 30_000;
      if (timeout > 0) {
        req.setTimeout(timeout, () =>
          req.destroy(new Error(`${method} ${path} timed out after ${timeout} ms`)),
        );
      }
      req.on('error', reject);
      req.end(body);
    });
  }

  async request<T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.open(method, path, opts);
    const text = await readAll(res);
    const type = res.headers['content-type'] ?? '';
    if (!type.includes('json')) return text as T;
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T = KObject>(rt: ResourceType, namespace: string | undefined, name: string): Promise<T> {
    return this.request('GET', resourcePath(rt, namespace, name));
  }

  async list<T = KObject>(
    rt: ResourceType,
    namespace?: string,
    query: RequestOptions['query'] = {},
  ): Promise<ListResult<T>> {
    const list = await this.request('GET', resourcePath(rt, namespace), { query });
    return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  create<T = KObject>(rt: ResourceType, obj: KObject): Promise<T> {
    obj.apiVersion ??= apiVersionOf(rt);
    obj.kind ??= rt.kind;
    return this.request('POST', resourcePath(rt, obj.metadata.namespace), { body: obj });
  }

  /** PUT of the whole object, conditional on its resourceVersion when it carries one. */
  update<T = KObject>(rt: ResourceType, obj: KObject, subresource?: string): Promise<T> {
    const { namespace, name } = obj.metadata;
    return this.request('PUT', resourcePath(rt, namespace, name, subresource), { body: obj });
  }

  updateStatus<T = KObject>(rt: ResourceType, obj: KObject): Promise<T> {
    return this.update(rt, obj, 'status');
  }

  patch<T = KObject>(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    type: 'merge' | 'strategic' | 'json' = 'merge',
    subresource?: string,
  ): Promise<T> {
    const contentType = {
      merge: 'application/merge-patch+json',
      strategic: 'application/strategic-merge-patch+json',
      json: 'application/json-patch+json',
    }[type];
    return this.request('PATCH', resourcePath(rt, namespace, name, subresource), {
      body: patch,
      contentType,
    });
  }

  delete<T = KObject>(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: { gracePeriodSeconds?: number; propagationPolicy?: string; preconditions?: unknown } = {},
  ): Promise<T> {
    const body = { kind: 'DeleteOptions', apiVersion: 'v1', ...opts };
    return this.request('DELETE', resourcePath(rt, namespace, name), { body });
  }

  /**
   * Watches a collection from a resourceVersion. Events arrive in order through onEvent;
   * the handle's `done` resolves when the server or stop() ends the stream.
   */
  watch<T = KObject>(
    rt: ResourceType,
    namespace: string | undefined,
    query: RequestOptions['query'],
    onEvent: (event: WatchEvent<T>) => void,
  ): WatchHandle {
    let stopped = false;
    let current: IncomingMessage | undefined;
    const done = (async () => {
      try {
        const res = await this.open('GET', resourcePath(rt, namespace), {
          query: { ...query, watch: true },
          timeoutMs: 0,
        });
        current = res;
        if (stopped) {
          res.destroy();
          return;
        }
        let buffer = '';
        res.setEncoding('utf8');
        for await (const chunk of res) {
          buffer += chunk;
          let newline: number;
          while ((newline = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, newline);
            buffer = buffer.slice(newline + 1);
            if (line.trim() && !stopped) onEvent(JSON.parse(line));
          }
        }
      } catch (err) {
        if (!stopped) onEvent({ type: 'ERROR', object: errorStatus(err) as unknown as T });
      }
    })();
    return {
      stop() {
        stopped = true;
        current?.destroy();
      },
      done,
    };
  }
}

function errorStatus(err: unknown): StatusObject {
  if (err instanceof ApiError) return err.toStatus();
  return new ApiError('InternalError', (err as Error)?.message ?? String(err)).toStatus();
}

/**
 * The whole body of a response as text. Listens for 'data' and 'end' rather than
 * iterating the stream: an async iterator per response costs more than most bodies do.
 */
function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.once('end', () => {
      resolve((chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8'));
    });
    res.once('error', reject);
    // A response cut short ends with 'aborted' and 'close' but no 'end' (or 'error').
    res.once('close', () => {
      if (!res.complete) reject(new Error('the connection closed before the response ended'));
    });
  });
}

/** Whether an error is an ApiError with the given reason. */
export function isReason(err: unknown, reason: StatusReason): boolean {
  return err instanceof ApiError && err.reason === reason;
}
