// CRC-32 (IEEE, the zlib/Java CRC32 polynomial) arithmetic for sealing records: a table-driven CRC
// for short byte ranges (cheaper than a native call for a record's header and tail), and `combine`,
// which yields CRC(A || B) from CRC(A), CRC(B) and B's length without reading the bytes again. With
// them an append reads its body once: the body CRC (upstream BODYCRC) is computed first and the
// whole-record CRC is assembled from the header CRC, that body CRC and the tail CRC.
import { crc32 } from "../../common/crc32.ts";

/** Reflected CRC-32 polynomial. */
const POLY = 0xedb88320 | 0;
/** Below this many bytes the table-driven loop beats a call into zlib. */
const SHORT_CRC_MAX = 256;
/** Lengths whose combine operator is cached (x^(8*len) mod P), i.e. up to 64 KiB - 1 bytes. */
const COMBINE_CACHE_SIZE = 65536;

/** Slicing-by-8 tables: TABLE[k * 256 + b] is the CRC contribution of byte b followed by k zero bytes. */
const TABLE = new Int32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = TABLE[n] as number;
  for (let k = 1; k < 8; k++) {
    c = (TABLE[c & 0xff] as number) ^ (c >>> 8);
    TABLE[k * 256 + n] = c;
  }
}

/**
 * CRC-32 of `buf[start, end)`, the same value as zlib's crc32 of that range; `init` continues a CRC
 * (the CRC of the bytes before the range), as zlib's second argument does.
 */
export function crc32Range(buf: Uint8Array, start: number, end: number, init = 0): number {
  if (end - start >= SHORT_CRC_MAX) return crc32(buf.subarray(start, end), init);
  const t = TABLE;
  let c = ~init;
  let i = start;
  for (; end - i >= 8; i += 8) {
    const a =
      c ^
      ((buf[i] as number) |
        ((buf[i + 1] as number) << 8) |
        ((buf[i + 2] as number) << 16) |
        ((buf[i + 3] as number) << 24));
    c =
      (t[1792 + (a & 0xff)] as number) ^
      (t[1536 + ((a >>> 8) & 0xff)] as number) ^
      (t[1280 + ((a >>> 16) & 0xff)] as number) ^
      (t[1024 + (a >>> 24)] as number) ^
      (t[768 + (buf[i + 4] as number)] as number) ^
      (t[512 + (buf[i + 5] as number)] as number) ^
      (t[256 + (buf[i + 6] as number)] as number) ^
      (t[buf[i + 7] as number] as number);
  }
  for (; i < end; i++) c = (t[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

/** a(x) * b(x) mod P(x), polynomials in the reflected bit order. */
function multModP(a: number, b: number): number {
  // Bit 31 is x^0. Walk a's bits from x^0 upwards while b steps through b*x^k (all int32 arithmetic).
  let p = 0;
  let bb = b | 0;
  let aa = a | 0;
  while (aa !== 0) {
    p ^= bb & (aa >> 31);
    aa <<= 1;
    bb = (bb >>> 1) ^ (POLY & -(bb & 1));
  }
  return p;
}

/** X2N[k] = x^(2^k) mod P. */
const X2N = new Int32Array(32);
{
  let p = 0x40000000; // x^1
  X2N[0] = p;
  for (let k = 1; k < 32; k++) {
    p = multModP(p, p);
    X2N[k] = p;
  }
}

/** x^(8 * len) mod P: the operator that shifts a CRC over `len` bytes. */
function shiftOperator(len: number): number {
  let p = 1 << 31; // x^0
  let n = len;
  let k = 3;
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N[k & 31] as number, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

const operatorCache = new Int32Array(COMBINE_CACHE_SIZE);

/** CRC-32 of A || B given crcA = CRC(A), crcB = CRC(B) and lenB = B's length in bytes. */
export function crc32Combine(crcA: number, crcB: number, lenB: number): number {
  let op: number;
  if (lenB < COMBINE_CACHE_SIZE) {
    op = operatorCache[lenB] as number;
    if (op === 0) {
      // x^n mod P is never 0 (P is irreducible), so 0 marks an empty cache slot.
      op = shiftOperator(lenB);
      operatorCache[lenB] = op;
    }
  } else {
    op = shiftOperator(lenB);
  }
  return (multModP(op, crcA) ^ crcB) >>> 0;
}
