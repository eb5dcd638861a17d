// The protobuf wire format at the level the proxy's hand-written codecs need it (the hot RPCs:
// message-wire-encoder.ts, send-message-codec.ts, ack-message-codec.ts): varints, tags and
// length-delimited fields, written into exactly-sized buffers and read without building a
// protobuf-es message tree. https://protobuf.dev/programming-guides/encoding/
//
// Readers are strict the cheap way: whatever they do not expect (a value beyond 2^53, an unknown
// field, a wire type that does not match, invalid UTF-8, a length past the end) makes them give up,
// and the caller then decodes the same bytes with protobuf-es, which decides as it always did.

import { isUtf8 } from "node:buffer";
import type { Resource, Status } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";

export const WIRE_VARINT = 0;
export const WIRE_LEN = 2;

/** A value these codecs write as a plain varint: a non-negative safe integer. */
export function isPlainUint(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Bytes of a tag; field numbers here are below 2048. */
export function tagSize(field: number): number {
  return field < 16 ? 1 : 2;
}

/** Bytes of a length-delimited field holding `len` bytes. */
export function lenFieldSize(field: number, len: number): number {
  return tagSize(field) + varintSize(len) + len;
}

export function varintFieldSize(field: number, n: number): number {
  return tagSize(field) + varintSize(n);
}

/** Strings up to this long are measured (and written) in JS: cheaper than a call into the encoder. */
const SHORT_STRING_CHARS = 48;

/** UTF-8 length of `s`; equal to s.length exactly when every character is ASCII. */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n <= SHORT_STRING_CHARS) {
    let i = 0;
    while (i < n && s.charCodeAt(i) < 0x80) i++;
    if (i === n) return n;
  }
  return Buffer.byteLength(s, "utf8");
}

/** Writes fields into a buffer sized beforehand (the caller checks `pos` against the size at the end). */
export class ProtoWriter {
  readonly buf: Buffer;
  pos: number;

  constructor(buf: Buffer, pos: number) {
    this.buf = buf;
    this.pos = pos;
  }

  varint(n: number): void {
    const buf = this.buf;
    let pos = this.pos;
    while (n >= 0x80) {
      buf[pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    buf[pos++] = n;
    this.pos = pos;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** A string field whose UTF-8 length is `len`. */
  string(field: number, value: string, len: number): void {
    this.tag(field, WIRE_LEN);
    this.varint(len);
    const buf = this.buf;
    if (len !== value.length) {
      this.pos += buf.write(value, this.pos, len, "utf8");
    } else if (len <= SHORT_STRING_CHARS) {
      // ASCII (the lengths agree): one byte per character.
      const p = this.pos;
      for (let i = 0; i < len; i++) buf[p + i] = value.charCodeAt(i);
      this.pos = p + len;
    } else {
      this.pos += buf.write(value, this.pos, len, "latin1");
    }
  }

  bytes(field: number, value: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.varint(value.byteLength);
    this.buf.set(value, this.pos);
    this.pos += value.byteLength;
  }

  uint(field: number, n: number): void {
    this.tag(field, WIRE_VARINT);
    this.varint(n);
  }

  /** Start of a nested message of `size` bytes. */
  nested(field: number, size: number): void {
    this.tag(field, WIRE_LEN);
    this.varint(size);
  }
}

/** Varint bytes beyond which a value may pass 2^53 (8 × 7 = 56 bits). */
const MAX_PLAIN_VARINT_BYTES = 8;
/** Strings up to this many bytes are checked for ASCII in JS before asking isUtf8. */
const ASCII_SCAN_BYTES = 64;

/** Reads fields of one message; every read returns -1 (or undefined) instead of throwing. */
export class ProtoReader {
  readonly buf: Buffer;
  pos: number;

  constructor(buf: Buffer, pos: number) {
    this.buf = buf;
    this.pos = pos;
  }

  /** An unsigned varint below 2^53; -1 when it is longer, larger, or cut off at `end`. */
  uint(end: number): number {
    const buf = this.buf;
    let pos = this.pos;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < MAX_PLAIN_VARINT_BYTES; i++) {
      if (pos >= end) return -1;
      const b = buf[pos++] as number;
      result += (b & 0x7f) * scale;
      if (b < 0x80) {
        this.pos = pos;
        return result <= Number.MAX_SAFE_INTEGER ? result : -1;
      }
      scale *= 128;
    }
    return -1;
  }

  /** An int32/enum varint that is not negative; -1 otherwise. */
  int32(end: number): number {
    const n = this.uint(end);
    return n > 0x7fff_ffff ? -1 : n;
  }

  /** The end of the length-delimited value that starts here; -1 when it runs past `end`. */
  lenEnd(end: number): number {
    const len = this.uint(end);
    if (len < 0 || len > end - this.pos) return -1;
    return this.pos + len;
  }

  /** A string field's value; undefined when it runs past `end` or is not valid UTF-8. */
  string(end: number): string | undefined {
    const stop = this.lenEnd(end);
    if (stop < 0) return undefined;
    const start = this.pos;
    this.pos = stop;
    const buf = this.buf;
    if (stop - start <= ASCII_SCAN_BYTES) {
      let ascii = true;
      for (let i = start; i < stop; i++) {
        if ((buf[i] as number) >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) return buf.toString("latin1", start, stop);
    }
    const bytes = buf.subarray(start, stop);
    return isUtf8(bytes) ? buf.toString("utf8", start, stop) : undefined;
  }

  /** A bytes field's value as a view into the buffer; undefined when it runs past `end`. */
  bytes(end: number): Buffer | undefined {
    const stop = this.lenEnd(end);
    if (stop < 0) return undefined;
    const view = this.buf.subarray(this.pos, stop);
    this.pos = stop;
    return view;
  }
}

// ---------------------------------------------------------------- v2 messages the codecs share

const T_LEN_1 = (1 << 3) | WIRE_LEN;
const T_LEN_2 = (2 << 3) | WIRE_LEN;

/** A Resource (resource_namespace 1, name 2) as fromBinary builds it; undefined for anything else. */
export function readResource(r: ProtoReader, end: number): Resource | undefined {
  let resourceNamespace = "";
  let name = "";
  while (r.pos < end) {
    const tag = r.uint(end);
    let s: string | undefined;
    if (tag === T_LEN_1) {
      s = r.string(end);
      if (s === undefined) return undefined;
      resourceNamespace = s;
    } else if (tag === T_LEN_2) {
      s = r.string(end);
      if (s === undefined) return undefined;
      name = s;
    } else {
      return undefined;
    }
  }
  return { $typeName: "apache.rocketmq.v2.Resource", resourceNamespace, name };
}

/** Bytes of a Status (code 1, message 2); -1 when it holds what these encoders do not write. */
export function statusSize(s: Status, messageLen: number): number {
  if (!isPlainUint(s.code) || s.code > 0x7fff_ffff || s.$unknown !== undefined) return -1;
  return (s.code !== 0 ? varintFieldSize(1, s.code) : 0) + (messageLen > 0 ? lenFieldSize(2, messageLen) : 0);
}

export function writeStatus(
  w: ProtoWriter,
  field: number,
  s: Status,
  size: number,
  messageLen: number,
): void {
  w.nested(field, size);
  if (s.code !== 0) w.uint(1, s.code);
  if (messageLen > 0) w.string(2, s.message, messageLen);
}
