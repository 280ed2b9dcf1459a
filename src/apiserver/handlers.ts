import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, badRequest, invalid } from '../api/errors.js';
import { formatLabelSelector } from '../api/labels.js';
import { jsonPatch, mergePatch, strategicMergePatch } from '../api/patch.js';
import { apiVersionOf, type ResourceType } from '../api/resources.js';
import type { KObject } from '../api/types.js';
import type { Store } from '../store/store.js';
import type { DeleteOptions, Registry, WriteOptions } from './registry.js';
import { resourcePrefix } from './registry.js';
import { decodeBody, readBody, wantsTable, type ResourceRequest } from './request.js';
import { matchesFilter, parseFilter } from './filter.js';
import { listPage } from './list.js';
import { parseIncludeObject, toTable } from './table.js';
import type { CachedObject, WatchCache } from './watch-cache.js';
import { serveWatch } from './watch.js';
import { bindPod, BOUND } from './binding.js';

/**
 * Handlers for resource requests: one function per verb, each answering with the object,
 * a list, a Table or a watch stream. Errors are thrown as ApiError and written by the server.
 */

export interface HandlerContext {
  registry: Registry;
  cache: WatchCache;
  store: Store;
  /** Opens a pod's log stream on the node that runs it. */
  podLogs(pod: KObject, query: URLSearchParams, signal?: AbortSignal): Promise<IncomingMessage>;
}

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

function listKind(rt: ResourceType): string {
  return `${rt.kind}List`;
}

/** Serves a list from the watch cache, consistent with the store unless RV "0" is asked. */
export async function handleList(
  ctx: HandlerContext,
  rr: ResourceRequest,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const filter = parseFilter(rr);
  const rv = rr.query.get('resourceVersion');
  if (rv === null || rv === '') await ctx.cache.waitFor(await ctx.store.currentRevision());
  else if (rv !== '0') {
    const wanted = Number(rv);
    if (!Number.isInteger(wanted) || wanted < 0)
      throw badRequest(`invalid resourceVersion ${JSON.stringify(rv)}`);
    await ctx.cache.waitFor(wanted);
  }
  const page = await listPage(ctx, rr, filter, ctx.cache.revision);
  const meta: Record<string, unknown> = { resourceVersion: String(page.revision) };
  if (page.continueToken) meta.continue = page.continueToken;
  if (page.remainingItemCount !== undefined) meta.remainingItemCount = page.remainingItemCount;

  if (wantsTable(req.headers.accept)) {
    const include = parseIncludeObject(rr.query.get('includeObject'));
    const objects = page.items.map((i) => i.obj);
    sendJson(res, 200, toTable(rr.rt, objects, meta as { resourceVersion: string }, include));
    return;
  }
  const head = `{"kind":"${listKind(rr.rt)}","apiVersion":"${apiVersionOf(rr.rt)}","metadata":${JSON.stringify(meta)},"items":[`;
  if (page.items.length <= STREAM_ITEMS) {
    sendJson(res, 200, head + page.items.map((i) => i.json()).join(',') + ']}');
    return;
  }
  await streamList(res, head, page.items);
}

/** Lists longer than this are streamed in chunks instead of built as one string. */
const STREAM_ITEMS = 500;
const STREAM_CHUNK_CHARS = 1 << 20;
/**
 * Bytes a list may have queued on its socket before it waits for them to drain. Waiting
 * after every chunk would cost an event-loop turn per megabyte, which under load is what
 * makes a list slow; this bounds the memory instead.
 */
const STREAM_BUFFER_BYTES = 8 << 20;

/**
 * Writes a long list in chunks of about a megabyte, waiting for the socket to drain when
 * more than STREAM_BUFFER_BYTES are queued: the server never holds the whole answer twice
 * (string and buffer), and a slow reader does not make it buffer everything. The items
 * were taken at one revision before the first chunk, so the list stays consistent.
 */
async function streamList(res: ServerResponse, head: string, items: CachedObject[]): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  let chunk = head;
  for (let i = 0; i < items.length; i++) {
    chunk += (i === 0 ? '' : ',') + items[i].json();
    if (chunk.length < STREAM_CHUNK_CHARS) continue;
    res.write(chunk);
    chunk = '';
    if (res.writableLength > STREAM_BUFFER_BYTES && !(await drained(res))) return;
  }
  res.end(chunk + ']}');
}

/** Resolves true once `res` can take more, false if the client went away first. */
function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

export async function handleGet(
  ctx: HandlerContext,
  rr: ResourceRequest,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const obj = await ctx.registry.get(rr.rt, rr.namespace, rr.name!);
  if (rr.subresource === 'scale') {
    sendJson(res, 200, toScale(rr.rt, obj));
    return;
  }
  if (wantsTable(req.headers.accept)) {
    const include = parseIncludeObject(rr.query.get('includeObject'));
    sendJson(
      res,
      200,
      toTable(rr.rt, [obj], { resourceVersion: obj.metadata.resourceVersion ?? '' }, include),
    );
    return;
  }
  sendJson(res, 200, obj);
}

/** Write options from the query: dryRun and fieldValidation; warnings land in `warnings`. */
function writeOptions(rr: ResourceRequest, warnings: string[]): WriteOptions {
  const mode = rr.query.get('fieldValidation') ?? 'Warn';
  if (mode !== 'Strict' && mode !== 'Warn' && mode !== 'Ignore') {
    throw badRequest(`fieldValidation parameter unsupported: ${mode}; use Ignore, Warn or Strict`);
  }
  return { dryRun: dryRun(rr), fieldValidation: mode, warnings };
}

/** Sets one Warning header per warning, as kubectl prints them. */
function setWarnings(res: ServerResponse, warnings: string[]): void {
  if (warnings.length === 0) return;
  res.setHeader(
    'Warning',
    warnings.map((w) => `299 - ${JSON.stringify(w)}`),
  );
}

/** Whether the query asks for a dry run (`dryRun=All`); any other value is refused. */
export function dryRun(rr: Pick<ResourceRequest, 'query'>): boolean {
  const value = rr.query.getAll('dryRun');
  if (value.some((v) => v !== 'All'))
    throw badRequest(`invalid dry run option ${JSON.stringify(value)}; only All is supported`);
  return value.length > 0;
}

export async function handleCreate(
  ctx: HandlerContext,
  rr: ResourceRequest,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = decodeBody(await readBody(req), req.headers['content-type']);
  if (body === undefined) throw badRequest('a request body is required');
  if (rr.subresource === 'binding') {
    await bindPod(ctx.registry, rr.rt, rr.namespace!, rr.name!, body as KObject, dryRun(rr));
    sendJson(res, 201, BOUND);
    return;
  }
  if (rr.name !== undefined) {
    throw new ApiError(
      'MethodNotAllowed',
      'POST to a named object is not allowed; use PUT or PATCH',
    );
  }
  const warnings: string[] = [];
  const created = await ctx.registry.create(rr.rt, rr.namespace, body, writeOptions(rr, warnings));
  setWarnings(res, warnings);
  sendJson(res, 201, created);
}

export async function handleUpdate(
  ctx: HandlerContext,
  rr: ResourceRequest,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = decodeBody(await readBody(req), req.headers['content-type']);
  if (body === undefined) throw badRequest('a request body is required');
  if (rr.subresource === 'scale') {
    const scale = body as KObject;
    const replicas = scale?.spec?.replicas;
    const updated = await setReplicas(ctx, rr, scale?.metadata?.resourceVersion, replicas);
    sendJson(res, 200, toScale(rr.rt, updated));
    return;
  }
  const warnings: string[] = [];
  const updated = await ctx.registry.update(
    rr.rt,
    rr.namespace,
    rr.name!,
    body,
    rr.subresource,
    writeOptions(rr, warnings),
  );
  setWarnings(res, warnings);
  sendJson(res, 200, updated);
}

async function setReplicas(
  ctx: HandlerContext,
  rr: ResourceRequest,
  rv: string | undefined,
  replicas: unknown,
): Promise<KObject> {
  if (!Number.isInteger(replicas) || (replicas as number) < 0) {
    throw invalid('Scale', 'autoscaling', rr.name ?? '', [
      {
        field: 'spec.replicas',
        type: 'Invalid',
        value: replicas,
        detail: 'must be greater than or equal to 0',
      },
    ]);
  }
  return ctx.registry.mutate(rr.rt, rr.namespace, rr.name!, rv, undefined, (obj) => {
    obj.spec.replicas = replicas;
    return obj;
  });
}

function toScale(rt: ResourceType, obj: KObject): unknown {
  const { name, namespace, uid, resourceVersion, creationTimestamp } = obj.metadata;
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name, namespace, uid, resourceVersion, creationTimestamp },
    spec: { replicas: obj.spec?.replicas ?? 0 },
    status: {
      replicas: obj.status?.replicas ?? 0,
      selector: formatLabelSelector(obj.spec?.selector),
    },
  };
}

const PATCHERS: Record<string, (target: unknown, patch: unknown) => any> = {
  'application/json-patch+json': jsonPatch,
  'application/merge-patch+json': mergePatch,
  'application/strategic-merge-patch+json': strategicMergePatch,
};

export async function handlePatch(
  ctx: HandlerContext,
  rr: ResourceRequest,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim();
  if (type === 'application/apply-patch+yaml') {
    throw new ApiError(
      'UnsupportedMediaType',
      'server-side apply is not supported yet; use client-side `kubectl apply`',
    );
  }
  const patcher = PATCHERS[type];
  if (!patcher)
    throw new ApiError(
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${Object.keys(PATCHERS).join(', ')}`,
    );
  const raw = await readBody(req);
  const patch = decodeBody(raw, 'application/json');
  if (patch === undefined) throw badRequest('a patch body is required');
  const precondition = (patch as KObject)?.metadata?.resourceVersion;
  if (rr.subresource === 'scale') {
    const current = await ctx.registry.get(rr.rt, rr.namespace, rr.name!);
    const scale = patcher(toScale(rr.rt, current), patch);
    const updated = await setReplicas(
      ctx,
      rr,
      precondition ?? current.metadata.resourceVersion,
      scale?.spec?.replicas,
    );
    sendJson(res, 200, toScale(rr.rt, updated));
    return;
  }
  const warnings: string[] = [];
  const updated = await ctx.registry.mutate(
    rr.rt,
    rr.namespace,
    rr.name!,
    typeof precondition === 'string' ? precondition : undefined,
    rr.subresource,
    (current) => patcher(current, patch),
    writeOptions(rr, warnings),
  );
  setWarnings(res, warnings);
  sendJson(res, 200, updated);
}

function deleteOptions(rr: ResourceRequest, body: unknown): DeleteOptions {
  const opts: DeleteOptions = {};
  const b = (body ?? {}) as Record<string, any>;
  const grace = rr.query.get('gracePeriodSeconds') ?? b.gracePeriodSeconds;
  if (grace !== undefined && grace !== null) {
    const n = Number(grace);
    if (!Number.isInteger(n))
      throw badRequest(`invalid gracePeriodSeconds ${JSON.stringify(grace)}`);
    opts.gracePeriodSeconds = n;
  }
  const policy = rr.query.get('propagationPolicy') ?? b.propagationPolicy;
  if (policy !== undefined && policy !== null) {
    if (!['Background', 'Foreground', 'Orphan'].includes(policy)) {
      throw badRequest(`invalid propagationPolicy ${JSON.stringify(policy)}`);
    }
    opts.propagationPolicy = policy;
  } else if (b.orphanDependents === true || rr.query.get('orphanDependents') === 'true') {
    opts.propagationPolicy = 'Orphan';
  }
  if (b.preconditions) opts.preconditions = b.preconditions;
  opts.dryRun = dryRun(rr) || (Array.isArray(b.dryRun) && b.dryRun.includes('All'));
  return opts;
}

export async function handleDelete(
  ctx: HandlerContext,
  rr: ResourceRequest,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = decodeBody(await readBody(req), req.headers['content-type']);
  const deleted = await ctx.registry.delete(rr.rt, rr.namespace, rr.name!, deleteOptions(rr, body));
  sendJson(res, 200, deleted);
}

export async function handleDeleteCollection(
  ctx: HandlerContext,
  rr: ResourceRequest,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = decodeBody(await readBody(req), req.headers['content-type']);
  const opts = deleteOptions(rr, body);
  const filter = parseFilter(rr);
  await ctx.cache.waitFor(await ctx.store.currentRevision());
  const prefix = resourcePrefix(rr.rt);
  const targets = [...ctx.cache.objects(prefix).values()].filter((c) =>
    matchesFilter(c.view, filter),
  );
  const items: KObject[] = [];
  for (const target of targets) {
    try {
      items.push(
        await ctx.registry.delete(
          rr.rt,
          target.view.metadata.namespace,
          target.view.metadata.name!,
          opts,
        ),
      );
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    }
  }
  sendJson(res, 200, {
    kind: listKind(rr.rt),
    apiVersion: apiVersionOf(rr.rt),
    metadata: {},
    items,
  });
}

export async function handleLog(
  ctx: HandlerContext,
  rr: ResourceRequest,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const pod = await ctx.registry.get(rr.rt, rr.namespace, rr.name!);
  if (!pod.spec?.nodeName) throw badRequest(`pod ${rr.name} does not have a host assigned`);
  // The client gone (a `logs -f` stopped), before the agent answered or after: the request
  // to the agent ends too. Without it each stopped `-f` left one open on the agent.
  const gone = new AbortController();
  res.on('close', () => gone.abort());
  const upstream = await ctx.podLogs(pod, rr.query, gone.signal);
  res.on('close', () => upstream.destroy());
  res.writeHead(upstream.statusCode ?? 502, {
    'Content-Type': upstream.headers['content-type'] ?? 'text/plain',
    'Transfer-Encoding': 'chunked',
  });
  upstream.pipe(res);
  // The agent gone mid-stream: the client sees its stream end at once, not hang.
  upstream.on('error', () => res.destroy());
  upstream.on('close', () => {
    if (!upstream.complete) res.destroy();
  });
}

export async function handleWatch(
  ctx: HandlerContext,
  rr: ResourceRequest,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  await serveWatch(ctx, rr, req, res, parseFilter(rr));
}
