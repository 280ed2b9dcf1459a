/**
 * A reader of the protocol buffers wire format: tags, varints, fixed-width values and
 * length-delimited payloads. It knows nothing of schemas; every read is bounded by the
 * buffer it was given, and every malformed input is a WireError, never a partial value.
 */

/** The four wire types protocol buffers still uses (3 and 4, groups, are refused). */
export const WireType = { Varint: 0, Fixed64: 1, Bytes: 2, Fixed32: 5 } as const;

/** Malformed input: the message says what was wrong and where. */
export class WireError extends Error {}

/** One field as read off the wire, before any schema gives it a meaning. */
export interface WireField {
  number: number;
  wireType: number;
  /** Offset of the field's value (after its tag). */
  offset: number;
}

export class WireReader {
  pos = 0;

  constructor(readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  /** Reads a field's tag; undefined at the end of the buffer. */
  tag(): WireField | undefined {
    if (this.done) return undefined;
    const at = this.pos;
    const key = this.uint();
    const wireType = key % 8;
    const number = Math.floor(key / 8);
    if (number < 1 || number > 0x1fffffff)
      throw new WireError(`invalid field number at byte ${at}`);
    if (wireType === 3 || wireType === 4 || wireType > 5) {
      throw new WireError(`unsupported wire type ${wireType} at byte ${at}`);
    }
    return { number, wireType, offset: this.pos };
  }

  /**
   * Reads a varint as a number, for tags and lengths; values past 2^53 (which no valid tag or
   * length has) are a WireError rather than a rounded number.
   */
  uint(): number {
    let result = 0;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.buf.length) throw new WireError('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    this.pos -= 8;
    const big = this.varint();
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError(`varint ${big} is too large`);
    return Number(big);
  }

  /** Reads a varint of up to 10 bytes as an unsigned 64-bit value. */
  varint(): bigint {
    let result = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new WireError('truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
    }
    throw new WireError(`varint longer than 10 bytes at byte ${this.pos - 10}`);
  }

  /** Reads a length-delimited payload without copying it. */
  bytes(): Uint8Array {
    const length = this.uint();
    const left = this.buf.length - this.pos;
    if (length > left) {
      throw new WireError(`length ${length} runs past the end (${left} bytes left)`);
    }
    const start = this.pos;
    this.pos += length;
    return this.buf.subarray(start, this.pos);
  }

  /** Passes over a varint; true when it is zero. */
  private skipVarint(): boolean {
    let zero = true;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new WireError('truncated varint');
      const b = this.buf[this.pos++];
      if ((b & 0x7f) !== 0) zero = false;
      if ((b & 0x80) === 0) return zero;
    }
    throw new WireError(`varint longer than 10 bytes at byte ${this.pos - 10}`);
  }

  fixed(width: 4 | 8): Uint8Array {
    if (this.buf.length - this.pos < width) throw new WireError(`truncated ${width * 8}-bit value`);
    const start = this.pos;
    this.pos += width;
    return this.buf.subarray(start, this.pos);
  }

  /** Reads a field's value of any wire type and says whether it is the type's zero value. */
  skip(wireType: number): { zero: boolean } {
    switch (wireType) {
      case WireType.Varint:
        return { zero: this.skipVarint() };
      case WireType.Bytes:
        return { zero: this.bytes().length === 0 };
      case WireType.Fixed64:
        return { zero: this.fixed(8).every((b) => b === 0) };
      default:
        return { zero: this.fixed(4).every((b) => b === 0) };
    }
  }
}

/** Interprets an unsigned 64-bit varint as a signed int32 (Go's int32 conversion). */
export function toInt32(v: bigint): number {
  return Number(BigInt.asIntN(32, v));
}

/** Interprets an unsigned 64-bit varint as a signed int64, as a JSON number. */
export function toInt64(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}
