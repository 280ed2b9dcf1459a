import { WireType } from './wire.js';

/**
 * A writer of the protocol buffers wire format, the counterpart of WireReader: it appends
 * tagged fields to a message and knows no schema. Following proto3, scalar fields equal to
 * their default ('' and false) are left out; an embedded message is always written, so an
 * empty one still marks its field as present.
 */
export class WireWriter {
  private readonly chunks: Uint8Array[] = [];
  /** Bytes written so far. */
  length = 0;

  /** A string field; nothing when the string is empty. */
  string(field: number, value: string | undefined): this {
    if (!value) return this;
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  /** A bool field; nothing when false. */
  bool(field: number, value: boolean | undefined): this {
    if (!value) return this;
    this.key(field, WireType.Varint);
    return this.push(Uint8Array.of(1));
  }

  /** A length-delimited field holding raw bytes. */
  bytes(field: number, value: Uint8Array): this {
    this.key(field, WireType.Bytes);
    this.varint(value.length);
    return this.push(value);
  }

  /** An embedded message, written by `fill` into a writer of its own. */
  message(field: number, fill: (inner: WireWriter) => void): this {
    const inner = new WireWriter();
    fill(inner);
    this.key(field, WireType.Bytes);
    this.varint(inner.length);
    for (const chunk of inner.chunks) this.push(chunk);
    return this;
  }

  /** The message written so far, as one buffer. */
  finish(): Uint8Array {
    return Buffer.concat(this.chunks, this.length);
  }

  private key(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  /** A non-negative integer of up to 2^53 as a varint (tags and lengths). */
  private varint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`bad varint ${value}`);
    const out: number[] = [];
    let rest = value;
    while (rest >= 0x80) {
      out.push((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    out.push(rest);
    this.push(Uint8Array.from(out));
  }

  private push(chunk: Uint8Array): this {
    this.chunks.push(chunk);
    this.length += chunk.length;
    return this;
  }
}
