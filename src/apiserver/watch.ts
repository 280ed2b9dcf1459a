import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, badRequest } from '../api/errors.js';
import { apiVersionOf } from '../api/resources.js';
import type { KObject } from '../api/types.js';
import { matchesFilter, type Filter } from './filter.js';
import type { HandlerContext } from './handlers.js';
import { resourcePrefix } from './registry.js';
import { wantsTable, type ResourceRequest } from './request.js';
import { parseIncludeObject, toTable } from './table.js';
import type { CacheEvent, CachedObject } from './watch-cache.js';

/**
 * Watch streams: newline-separated JSON events (`{"type":"ADDED","object":{...}}`) in
 * revision order. A watch without a resourceVersion first sends every current object as
 * ADDED; one with a resourceVersion replays the changes after it from the cache's window.
 * An object that stops matching the selectors is sent as DELETED, one that starts as ADDED.
 */

/** A watch whose client reads slower than this many buffered bytes is closed. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
const BOOKMARK_INTERVAL_MS = 60_000;

export async function serveWatch(
  ctx: HandlerContext,
  rr: ResourceRequest,
  req: IncomingMessage,
  res: ServerResponse,
  filter: Filter,
): Promise<void> {
  const rvText = rr.query.get('resourceVersion');
  let rv: number | undefined;
  if (rvText !== null && rvText !== '' && rvText !== '0') {
    rv = Number(rvText);
    if (!Number.isInteger(rv) || rv < 0)
      throw badRequest(`invalid resourceVersion ${JSON.stringify(rvText)}`);
  }
  if (rvText === null || rvText === '') await ctx.cache.waitFor(await ctx.store.currentRevision());
  // A version the store has not reached yet is waited for, then refused as a list is.
  if (rv !== undefined) await ctx.cache.waitFor(rv, 3_000);
  const table = wantsTable(req.headers.accept);
  const include = parseIncludeObject(rr.query.get('includeObject'));
  let first = true;
  const encode = (type: string, cached: CachedObject): string => {
    if (!table) return `{"type":"${type}","object":${cached.json()}}\n`;
    const obj = cached.obj;
    const t = toTable(
      rr.rt,
      [obj],
      { resourceVersion: obj.metadata.resourceVersion ?? '' },
      include,
      first,
    );
    first = false;
    return `{"type":"${type}","object":${JSON.stringify(t)}}\n`;
  };
  const prefix = resourcePrefix(rr.rt);
  const named = (obj: KObject) => rr.name === undefined || obj.metadata.name === rr.name;
  const matches = (obj: KObject | undefined) =>
    obj !== undefined && named(obj) && matchesFilter(obj, filter);

  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Transfer-Encoding': 'chunked',
    'Cache-Control': 'no-cache',
  });
  res.flushHeaders();
  let closed = false;
  let corked = false;
  const uncork = () => {
    corked = false;
    res.uncork();
  };
  // The cache hands over a burst of changes (one store commit) in one turn: they leave in
  // one write to the socket at the end of the turn rather than one write each.
  const send = (text: string) => {
    if (closed) return;
    if (!corked) {
      corked = true;
      res.cork();
      process.nextTick(uncork);
    }
    res.write(text);
    if (res.writableLength > MAX_BUFFERED_BYTES) close();
  };

  const translate = (event: CacheEvent) => {
    const now = matches(event.object.view);
    const before = matches(event.prev?.view);
    if (event.type === 'DELETED') {
      if (before || now) send(encode('DELETED', event.object));
    } else if (now && before) send(encode('MODIFIED', event.object));
    else if (now) send(encode('ADDED', event.object));
    else if (before) send(encode('DELETED', event.object));
  };

  // The cache applies store events synchronously, so taking the snapshot or the replay and
  // registering the listener in one turn of the event loop leaves no gap and no overlap.
  let backlog: CacheEvent[] = [];
  try {
    if (rv === undefined) {
      for (const cached of ctx.cache.objects(prefix).values()) {
        if (matches(cached.view)) send(encode('ADDED', cached));
      }
    } else backlog = ctx.cache.eventsSince(prefix, rv);
  } catch (err) {
    if (err instanceof ApiError) {
      send(`{"type":"ERROR","object":${JSON.stringify(err.toStatus())}}\n`);
      res.end();
      return;
    }
    throw err;
  }
  for (const event of backlog) translate(event);
  const unlisten = ctx.cache.listen(prefix, translate);

  const bookmarks = rr.query.get('allowWatchBookmarks') === 'true';
  const bookmarkTimer = bookmarks
    ? setInterval(() => {
        const rvNow = String(ctx.cache.revision);
        send(
          `{"type":"BOOKMARK","object":{"kind":"${rr.rt.kind}","apiVersion":"${apiVersionOf(rr.rt)}","metadata":{"resourceVersion":"${rvNow}"}}}\n`,
        );
      }, BOOKMARK_INTERVAL_MS)
    : undefined;
  const timeoutSeconds = Number(rr.query.get('timeoutSeconds') ?? 0);
  const limitMs = timeoutSeconds > 0 ? timeoutSeconds * 1000 : (1800 + Math.random() * 1800) * 1000;
  const timeout = setTimeout(() => close(), limitMs);

  function close(): void {
    if (closed) return;
    closed = true;
    unlisten();
    clearTimeout(timeout);
    if (bookmarkTimer) clearInterval(bookmarkTimer);
    res.end();
  }
  req.on('close', close);
  res.on('close', close);
}
