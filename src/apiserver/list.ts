import { ApiError, badRequest } from '../api/errors.js';
import { StoreError } from '../store/store.js';
import { matchesFilter, type Filter } from './filter.js';
import type { HandlerContext } from './handlers.js';
import { resourcePrefix } from './registry.js';
import type { ResourceRequest } from './request.js';
import { CachedObject } from './watch-cache.js';

/**
 * Lists in pages, as `?limit=N` and `?continue=TOKEN` ask. The first page comes from the
 * watch cache; later pages are read from the store at the first page's revision, so every
 * page belongs to one consistent snapshot. A token whose revision has been compacted away
 * answers 410 Expired and the client starts over.
 */

export interface Page {
  items: CachedObject[];
  revision: number;
  continueToken?: string;
  remainingItemCount?: number;
}

interface Token {
  rv: number;
  start: string;
}

function parseLimit(text: string | null): number | undefined {
  if (text === null || text === '' || text === '0') return undefined;
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 0)
    throw badRequest(`invalid limit ${JSON.stringify(text)}`);
  return limit;
}

function encodeToken(token: Token): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

function decodeToken(text: string, keyPrefix: string): Token {
  try {
    const token = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Token;
    if (
      Number.isInteger(token.rv) &&
      typeof token.start === 'string' &&
      token.start.startsWith(keyPrefix)
    ) {
      return token;
    }
  } catch {
    // Falls through to the error below.
  }
  throw badRequest('continue key is not valid');
}

function keyPrefixOf(rr: ResourceRequest, filter: Filter): string {
  const prefix = resourcePrefix(rr.rt);
  return filter.namespace ? `${prefix}${filter.namespace}/` : prefix;
}

/** The cache's matching objects at its current revision, ordered by key. */
function fromCache(ctx: HandlerContext, rr: ResourceRequest, filter: Filter): CachedObject[] {
  const keyPrefix = keyPrefixOf(rr, filter);
  const items: CachedObject[] = [];
  for (const [key, cached] of ctx.cache.objects(resourcePrefix(rr.rt))) {
    if (key.startsWith(keyPrefix) && matchesFilter(cached.view, filter)) items.push(cached);
  }
  return items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Up to limit+1 matching objects after `start`, as the store held them at `rv`. */
async function fromStore(
  ctx: HandlerContext,
  keyPrefix: string,
  filter: Filter,
  token: Token,
  limit: number,
) {
  const out: CachedObject[] = [];
  let after = token.start;
  const chunk = Math.max(100, limit * 2);
  while (out.length <= limit) {
    const { items } = await ctx.store.list(keyPrefix, {
      revision: token.rv,
      startAfter: after,
      limit: chunk,
    });
    for (const kv of items) {
      after = kv.key;
      const cached = new CachedObject(kv.key, kv.value, kv.modRevision);
      if (matchesFilter(cached.view, filter)) out.push(cached);
    }
    if (items.length < chunk) break;
  }
  return out;
}

export async function listPage(
  ctx: HandlerContext,
  rr: ResourceRequest,
  filter: Filter,
  revision: number,
): Promise<Page> {
  const limit = parseLimit(rr.query.get('limit'));
  const continueText = rr.query.get('continue');
  if (!continueText) {
    const items = fromCache(ctx, rr, filter);
    if (limit === undefined || items.length <= limit) return { items, revision };
    const page = items.slice(0, limit);
    const continueToken = encodeToken({ rv: revision, start: page[page.length - 1].key });
    return { items: page, revision, continueToken, remainingItemCount: items.length - limit };
  }
  const keyPrefix = keyPrefixOf(rr, filter);
  const token = decodeToken(continueText, keyPrefix);
  let items: CachedObject[];
  try {
    items = await fromStore(ctx, keyPrefix, filter, token, limit ?? Number.MAX_SAFE_INTEGER - 1);
  } catch (err) {
    if (err instanceof StoreError && err.code === 'Compacted') {
      throw new ApiError(
        'Expired',
        'The provided continue parameter is too old to display a consistent list result. ' +
          'You can start a new list without the continue parameter.',
      );
    }
    throw err;
  }
  if (limit === undefined || items.length <= limit) return { items, revision: token.rv };
  const page = items.slice(0, limit);
  return {
    items: page,
    revision: token.rv,
    continueToken: encodeToken({ rv: token.rv, start: page[page.length - 1].key }),
  };
}
