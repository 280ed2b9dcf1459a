import { randomInt } from 'node:crypto';
import { StoreError, type Store } from '../store/store.js';

/**
 * Allocation of values from a finite range (service IPs, node ports), shared by every API
 * server on one store. Each value in use has a reservation key of its own under the
 * allocator's prefix, written with the store's atomic create: of two API servers racing for
 * the same value exactly one create succeeds, and the other moves on to another value. The
 * reservation names its owner, so a repair pass can find reservations nobody holds.
 *
 * Reservation keys live outside `/registry/`, so the watch cache and clients never see them.
 */

/** A finite, ordered set of values an allocator hands out. */
export interface Range {
  readonly size: number;
  /** The value at index `i` (0 <= i < size). */
  at(i: number): string;
  /** The index of a value, or undefined if the value is not in the range. */
  indexOf(value: string): number | undefined;
  /** How the range is written in messages: `10.43.0.0/16`, `30000-32767`. */
  readonly text: string;
}

/** Who holds a reservation. */
export interface Owner {
  kind: string;
  namespace: string;
  name: string;
  uid: string;
}

/** A reservation as stored: the value, who holds it, since when. */
export interface Reservation {
  value: string;
  owner: Owner;
  /** When the reservation was made (ms since the epoch). */
  reservedAt: number;
  modRevision: number;
}

/** How an allocation came out; anything else is a fault and thrown. */
export type Allocation =
  { ok: true; value: string } | { ok: false; reason: 'Allocated' | 'NotInRange' | 'Full' };

function ipToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    n = n * 256 + Number(part);
  }
  return n;
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/**
 * The usable addresses of an IPv4 CIDR: every address but the network and broadcast
 * addresses (for prefixes up to /30, as Kubernetes does).
 */
export class IPv4Range implements Range {
  readonly size: number;
  private readonly first: number;

  constructor(readonly text: string) {
    const [ip, bits] = text.split('/');
    const base = ipToInt(ip ?? '');
    const prefix = Number(bits);
    if (base === undefined || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) {
      throw new Error(`invalid service CIDR ${JSON.stringify(text)}: want an IPv4 /8 to /30`);
    }
    const span = 2 ** (32 - prefix);
    const network = base - (base % span);
    if (network !== base) throw new Error(`service CIDR ${text} is not a network address`);
    this.first = network + 1;
    this.size = span - 2;
  }

  at(i: number): string {
    return intToIp(this.first + i);
  }

  indexOf(value: string): number | undefined {
    const n = ipToInt(value);
    if (n === undefined) return undefined;
    const i = n - this.first;
    return i >= 0 && i < this.size ? i : undefined;
  }
}

/** An inclusive range of port numbers, written `30000-32767`. */
export class PortRange implements Range {
  readonly size: number;
  private readonly low: number;

  constructor(readonly text: string) {
    const match = /^(\d+)-(\d+)$/.exec(text);
    const low = Number(match?.[1]);
    const high = Number(match?.[2]);
    if (!match || low < 1 || high > 65535 || low > high) {
      throw new Error(`invalid port range ${JSON.stringify(text)}: want LOW-HIGH within 1-65535`);
    }
    this.low = low;
    this.size = high - low + 1;
  }

  at(i: number): string {
    return String(this.low + i);
  }

  indexOf(value: string): number | undefined {
    if (!/^\d+$/.test(value)) return undefined;
    const i = Number(value) - this.low;
    return i >= 0 && i < this.size ? i : undefined;
  }
}

export interface RangeAllocatorOptions {
  /** Values never handed out by allocateNext (they may still be asked for by name). */
  reserved?: string[];
}

/**
 * Hands out values of one range through reservation keys `<prefix><value>` on the store.
 * Safe to use from any number of processes on one store at once.
 */
export class RangeAllocator {
  private readonly reserved: Set<string>;

  constructor(
    private readonly store: Store,
    /** Key prefix of the reservations, ending in '/': `/ranges/serviceips/`. */
    readonly prefix: string,
    readonly range: Range,
    opts: RangeAllocatorOptions = {},
  ) {
    this.reserved = new Set(opts.reserved ?? []);
  }

  /** Reserves the given value for `owner`; an owner asking again for its own value gets it. */
  async allocate(value: string, owner: Owner): Promise<Allocation> {
    if (this.range.indexOf(value) === undefined) return { ok: false, reason: 'NotInRange' };
    if (await this.tryCreate(value, owner)) return { ok: true, value };
    const held = await this.get(value);
    if (held && held.owner.uid === owner.uid) return { ok: true, value };
    return { ok: false, reason: 'Allocated' };
  }

  /** Reserves any free value, starting the search at a random place in the range. */
  async allocateNext(owner: Owner): Promise<Allocation> {
    const taken = new Set((await this.list()).map((r) => r.value));
    const start = randomInt(this.range.size);
    for (let n = 0; n < this.range.size; n++) {
      const value = this.range.at((start + n) % this.range.size);
      if (taken.has(value) || this.reserved.has(value)) continue;
      // Another API server may have taken it since the list: the create decides.
      if (await this.tryCreate(value, owner)) return { ok: true, value };
    }
    return { ok: false, reason: 'Full' };
  }

  /**
   * What allocate would answer, without reserving anything (for dry-run): the value if it
   * is free or already the owner's.
   */
  async check(value: string, owner: Owner): Promise<Allocation> {
    if (this.range.indexOf(value) === undefined) return { ok: false, reason: 'NotInRange' };
    const held = await this.get(value);
    if (!held || held.owner.uid === owner.uid) return { ok: true, value };
    return { ok: false, reason: 'Allocated' };
  }

  /** A value allocateNext could hand out now, without reserving it (for dry-run). */
  async peekNext(): Promise<Allocation> {
    const taken = new Set((await this.list()).map((r) => r.value));
    for (let i = 0; i < this.range.size; i++) {
      const value = this.range.at(i);
      if (!taken.has(value) && !this.reserved.has(value)) return { ok: true, value };
    }
    return { ok: false, reason: 'Full' };
  }

  /**
   * Frees a value. With `uid`, only a reservation held by that owner is freed, so a late
   * release never takes a value from someone who reserved it since. True if freed.
   */
  async release(value: string, uid?: string): Promise<boolean> {
    const held = await this.get(value);
    if (!held || (uid !== undefined && held.owner.uid !== uid)) return false;
    try {
      await this.store.delete(this.prefix + value, held.modRevision);
      return true;
    } catch (err) {
      if (err instanceof StoreError && (err.code === 'NotFound' || err.code === 'Conflict')) {
        return false;
      }
      throw err;
    }
  }

  async get(value: string): Promise<Reservation | undefined> {
    const kv = await this.store.get(this.prefix + value);
    return kv ? parseReservation(value, kv.value, kv.modRevision) : undefined;
  }

  /** Every reservation, in key order. */
  async list(): Promise<Reservation[]> {
    const { items } = await this.store.list(this.prefix);
    return items.map((kv) =>
      parseReservation(kv.key.slice(this.prefix.length), kv.value, kv.modRevision),
    );
  }

  private async tryCreate(value: string, owner: Owner): Promise<boolean> {
    try {
      await this.store.create(
        this.prefix + value,
        JSON.stringify({ owner, reservedAt: Date.now() }),
      );
      return true;
    } catch (err) {
      if (err instanceof StoreError && err.code === 'AlreadyExists') return false;
      throw err;
    }
  }
}

function parseReservation(value: string, text: string, modRevision: number): Reservation {
  let parsed: { owner?: Owner; reservedAt?: number } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    // An unreadable reservation is kept as held by nobody; repair frees it.
  }
  const owner = parsed.owner ?? { kind: '', namespace: '', name: '', uid: '' };
  return { value, owner, reservedAt: parsed.reservedAt ?? 0, modRevision };
}
