/**
 * Protobuf wire primitives for the hand-written codec (codec.ts): sizes,
 * a writer into one preallocated Buffer, and a bounds-checked reader that
 * returns views instead of copies. Only what the hot messages use.
 *
 * Errors: input that cannot be encoded or decoded (a truncated or malformed
 * message, a value out of its field's range) throws base's InvalidInputError,
 * which the service kit maps to INVALID_ARGUMENT; the two passes disagreeing
 * is a bug in this codec and throws AssertionError.
 */
import { AssertionError, InvalidInputError } from "@logplayer/base";

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH_DELIMITED = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

const TWO_POW_32 = 4294967296;
/** Strings up to this many bytes (keys, ids) are decoded by hand when ASCII: cheaper than a UTF-8 decoder call. */
const SHORT_STRING_BYTES = 32;

function decodeShortString(buf: Buffer, start: number, end: number): string {
  let text = "";
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    if (byte >= 0x80) return buf.toString("utf8", start, end);
    text += String.fromCharCode(byte);
  }
  return text;
}
const UINT64_MAX = (1n << 64n) - 1n;

/** Bytes of an unsigned varint for 0 <= n < 2^53. */
export function varintSizeNumber(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  let rest = Math.floor(n / 0x10000000);
  while (rest > 0) {
    size += 1;
    rest = Math.floor(rest / 0x80);
  }
  return size;
}

/** Bytes of a uint64 varint (the caller checked the range). */
export function varintSizeBigint(value: bigint): number {
  if (value <= 0x1fffffffffffffn) return varintSizeNumber(Number(value));
  let size = 1;
  let rest = value >> 7n;
  while (rest > 0n) {
    size += 1;
    rest >>= 7n;
  }
  return size;
}

/** An int32 field: negative values take ten bytes (sign-extended to 64 bits), as protobuf says. */
export function int32Size(value: number): number {
  return value < 0 ? 10 : varintSizeNumber(value);
}

/** Bytes of a length-delimited field's length prefix plus its body. */
export function delimitedSize(bodyBytes: number): number {
  return varintSizeNumber(bodyBytes) + bodyBytes;
}

/** Throws like ts-proto does for a uint64 field out of range. */
export function checkUint64(value: bigint, field: string): bigint {
  if (value < 0n || value > UINT64_MAX) throw new InvalidInputError(`value provided for field ${field} of type uint64 too large`);
  return value;
}

export function zigzag64(value: bigint, field: string): bigint {
  if (BigInt.asIntN(64, value) !== value) throw new InvalidInputError(`value provided for field ${field} of type sint64 too large`);
  return BigInt.asUintN(64, (value << 1n) ^ (value >> 63n));
}

export function unzigzag64(value: bigint): bigint {
  return BigInt.asIntN(64, (value >> 1n) ^ -(value & 1n));
}

/** Writes into one Buffer sized beforehand; overrunning it is a bug (asserted at the end). */
export class WireWriter {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Unsigned varint, 0 <= n < 2^53. */
  varint(n: number): void {
    const buf = this.buf;
    let pos = this.pos;
    while (n >= 0x80) {
      buf[pos++] = (n & 0x7f) | 0x80;
      n = n >= TWO_POW_32 ? Math.floor(n / 0x80) : n >>> 7;
    }
    buf[pos++] = n;
    this.pos = pos;
  }

  varintBigint(value: bigint): void {
    if (value <= 0x1fffffffffffffn) {
      this.varint(Number(value));
      return;
    }
    let rest = value;
    while (rest >= 0x80n) {
      this.buf[this.pos++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.buf[this.pos++] = Number(rest);
  }

  int32(value: number): void {
    if (value >= 0) this.varint(value);
    else this.varintBigint(BigInt.asUintN(64, BigInt(value)));
  }

  bytes(value: Uint8Array): void {
    this.varint(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }

  /** A string whose UTF-8 length the caller computed (Buffer.byteLength). */
  string(value: string, byteLength: number): void {
    this.varint(byteLength);
    const written = this.buf.write(value, this.pos, byteLength, "utf8");
    if (written !== byteLength) throw new AssertionError(`wire: string wrote ${written} bytes, expected ${byteLength}`);
    this.pos += byteLength;
  }

  /** The encoded message; throws when the sizing pass and the writes disagree. */
  finish(): Buffer {
    if (this.pos !== this.buf.length) throw new AssertionError(`wire: wrote ${this.pos} bytes into a ${this.buf.length}-byte message`);
    return this.buf;
  }
}

/** Reads from a Buffer; every read is bounds-checked against `end`. */
export class WireReader {
  readonly buf: Buffer;
  pos: number;
  end: number;

  constructor(buf: Buffer | Uint8Array) {
    this.buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = 0;
    this.end = this.buf.length;
  }

  #eof(): never {
    throw new InvalidInputError("premature EOF");
  }

  /** A varint's low 32 bits as an unsigned number (like protobuf's uint32 read). */
  uint32(): number {
    const buf = this.buf;
    let result = 0;
    // A running power of two: `2 ** shift` compiles to a pow() call.
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.#eof();
      const byte = buf[this.pos++]!;
      if (i < 5) result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result % TWO_POW_32;
      scale *= 128;
    }
    throw new InvalidInputError("invalid varint encoding");
  }

  int32(): number {
    return this.uint32() | 0;
  }

  /** A uint64 varint as a bigint. */
  uint64(): bigint {
    const buf = this.buf;
    let low = 0;
    let scale = 1;
    // Up to 7 bytes (49 bits) fit a double exactly: the common case, no bigint work.
    for (let i = 0; i < 7; i++) {
      if (this.pos >= this.end) this.#eof();
      const byte = buf[this.pos++]!;
      low += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return BigInt(low);
      scale *= 128;
    }
    let result = BigInt(low);
    let bigShift = 49n;
    for (let i = 7; i < 10; i++) {
      if (this.pos >= this.end) this.#eof();
      const byte = buf[this.pos++]!;
      result |= BigInt(byte & 0x7f) << bigShift;
      if ((byte & 0x80) === 0) return BigInt.asUintN(64, result);
      bigShift += 7n;
    }
    throw new InvalidInputError("invalid varint encoding");
  }

  /** The length prefix of a delimited field, checked against the bytes left. */
  length(): number {
    const length = this.uint32();
    if (length > this.end - this.pos) this.#eof();
    return length;
  }

  /** A bytes field as a view of the input (no copy). */
  bytes(): Buffer {
    const length = this.length();
    const start = this.pos;
    this.pos += length;
    return this.buf.subarray(start, start + length);
  }

  string(): string {
    const length = this.length();
    const start = this.pos;
    this.pos += length;
    return length <= SHORT_STRING_BYTES
      ? decodeShortString(this.buf, start, start + length)
      : this.buf.toString("utf8", start, start + length);
  }

  /** Skips a field of an unknown number, or of a known one with an unexpected wire type. */
  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.uint64();
        return;
      case WIRE_FIXED64:
        this.#advance(8);
        return;
      case WIRE_LENGTH_DELIMITED:
        this.#advance(this.length());
        return;
      case WIRE_START_GROUP:
        for (;;) {
          const tag = this.uint32();
          if ((tag & 7) === WIRE_END_GROUP) return;
          this.skip(tag & 7);
        }
      case WIRE_FIXED32:
        this.#advance(4);
        return;
      default:
        throw new InvalidInputError(`cant skip wire type ${wireType}`);
    }
  }

  #advance(bytes: number): void {
    if (bytes > this.end - this.pos) this.#eof();
    this.pos += bytes;
  }
}
