// SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012): a keyed 64-bit PRF
// meant as a MAC for short messages, here in plain JS on 32-bit halves. Receipt handles use it for
// their per-message MAC (receipt-handle.ts): for an input of a few words it costs a fraction of one
// call into node:crypto. Checked against the paper's test vectors (siphash.test.ts).

const WORDS = 8;
// state as [v0 lo, v0 hi, v1 lo, v1 hi, v2 lo, v2 hi, v3 lo, v3 hi]
const state = new Uint32Array(WORDS);

function sipRound(v: Uint32Array): void {
  let v0l = v[0] as number;
  let v0h = v[1] as number;
  let v1l = v[2] as number;
  let v1h = v[3] as number;
  let v2l = v[4] as number;
  let v2h = v[5] as number;
  let v3l = v[6] as number;
  let v3h = v[7] as number;
  let lo: number;
  let t: number;
  // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
  lo = v0l + v1l;
  v0h = (v0h + v1h + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  v0l = lo >>> 0;
  t = ((v1h << 13) | (v1l >>> 19)) >>> 0;
  v1l = ((v1l << 13) | (v1h >>> 19)) >>> 0;
  v1h = t;
  v1l = (v1l ^ v0l) >>> 0;
  v1h = (v1h ^ v0h) >>> 0;
  t = v0l;
  v0l = v0h;
  v0h = t;
  // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
  lo = v2l + v3l;
  v2h = (v2h + v3h + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  v2l = lo >>> 0;
  t = ((v3h << 16) | (v3l >>> 16)) >>> 0;
  v3l = ((v3l << 16) | (v3h >>> 16)) >>> 0;
  v3h = t;
  v3l = (v3l ^ v2l) >>> 0;
  v3h = (v3h ^ v2h) >>> 0;
  // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
  lo = v0l + v3l;
  v0h = (v0h + v3h + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  v0l = lo >>> 0;
  t = ((v3h << 21) | (v3l >>> 11)) >>> 0;
  v3l = ((v3l << 21) | (v3h >>> 11)) >>> 0;
  v3h = t;
  v3l = (v3l ^ v0l) >>> 0;
  v3h = (v3h ^ v0h) >>> 0;
  // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
  lo = v2l + v1l;
  v2h = (v2h + v1h + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  v2l = lo >>> 0;
  t = ((v1h << 17) | (v1l >>> 15)) >>> 0;
  v1l = ((v1l << 17) | (v1h >>> 15)) >>> 0;
  v1h = t;
  v1l = (v1l ^ v2l) >>> 0;
  v1h = (v1h ^ v2h) >>> 0;
  t = v2l;
  v2l = v2h;
  v2h = t;
  v[0] = v0l;
  v[1] = v0h;
  v[2] = v1l;
  v[3] = v1h;
  v[4] = v2l;
  v[5] = v2h;
  v[6] = v3l;
  v[7] = v3h;
}

function compress(v: Uint32Array, mLo: number, mHi: number): void {
  v[6] = ((v[6] as number) ^ mLo) >>> 0;
  v[7] = ((v[7] as number) ^ mHi) >>> 0;
  sipRound(v);
  sipRound(v);
  v[0] = ((v[0] as number) ^ mLo) >>> 0;
  v[1] = ((v[1] as number) ^ mHi) >>> 0;
}

/** A SipHash key: 16 bytes as four little-endian 32-bit words (k0 lo, k0 hi, k1 lo, k1 hi). */
export type SipKey = Uint32Array;

export function sipKey(key: Uint8Array): SipKey {
  if (key.byteLength < 16) throw new RangeError("a SipHash key is 16 bytes");
  const k = new Uint32Array(4);
  const view = new DataView(key.buffer, key.byteOffset, 16);
  for (let i = 0; i < 4; i++) k[i] = view.getUint32(4 * i, true);
  return k;
}

function init(v: Uint32Array, k: SipKey): void {
  const k0l = k[0] as number;
  const k0h = k[1] as number;
  const k1l = k[2] as number;
  const k1h = k[3] as number;
  v[0] = (k0l ^ 0x70736575) >>> 0;
  v[1] = (k0h ^ 0x736f6d65) >>> 0;
  v[2] = (k1l ^ 0x6e646f6d) >>> 0;
  v[3] = (k1h ^ 0x646f7261) >>> 0;
  v[4] = (k0l ^ 0x6e657261) >>> 0;
  v[5] = (k0h ^ 0x6c796765) >>> 0;
  v[6] = (k1l ^ 0x79746573) >>> 0;
  v[7] = (k1h ^ 0x74656462) >>> 0;
}

/** Finishes the hash; writes the 8 output bytes (little-endian, as the reference) to `out` at `at`. */
function finish(v: Uint32Array, out: Uint8Array, at: number): void {
  v[4] = ((v[4] as number) ^ 0xff) >>> 0;
  sipRound(v);
  sipRound(v);
  sipRound(v);
  sipRound(v);
  const lo = ((v[0] as number) ^ (v[2] as number) ^ (v[4] as number) ^ (v[6] as number)) >>> 0;
  const hi = ((v[1] as number) ^ (v[3] as number) ^ (v[5] as number) ^ (v[7] as number)) >>> 0;
  out[at] = lo & 0xff;
  out[at + 1] = (lo >>> 8) & 0xff;
  out[at + 2] = (lo >>> 16) & 0xff;
  out[at + 3] = lo >>> 24;
  out[at + 4] = hi & 0xff;
  out[at + 5] = (hi >>> 8) & 0xff;
  out[at + 6] = (hi >>> 16) & 0xff;
  out[at + 7] = hi >>> 24;
}

/** SipHash-2-4 of the bytes of `message`; the 8 output bytes go to `out` at `at`. */
export function sipHash24(k: SipKey, message: Uint8Array, out: Uint8Array, at = 0): void {
  const v = state;
  init(v, k);
  const n = message.byteLength;
  const full = n - (n % 8);
  const le = (i: number) =>
    ((message[i] as number) |
      ((message[i + 1] as number) << 8) |
      ((message[i + 2] as number) << 16) |
      ((message[i + 3] as number) << 24)) >>>
    0;
  for (let i = 0; i < full; i += 8) compress(v, le(i), le(i + 4));
  let lo = 0;
  let hi = (n & 0xff) << 24;
  for (let i = full; i < n; i++) {
    const shift = 8 * (i - full);
    if (shift < 32) lo |= (message[i] as number) << shift;
    else hi |= (message[i] as number) << (shift - 32);
  }
  compress(v, lo >>> 0, hi >>> 0);
  finish(v, out, at);
}

const TWO_32 = 0x1_0000_0000;

/**
 * SipHash-2-4 of three non-negative safe integers, each taken as a little-endian 64-bit word (the
 * 24-byte message sipHash24 would hash for them), without building the bytes. The same rounds as
 * sipRound, on locals (this runs once per issued receipt handle).
 */
export function sipHash24Words(k: SipKey, a: number, b: number, c: number, out: Uint8Array, at = 0): void {
  const k0l = k[0] as number;
  const k0h = k[1] as number;
  const k1l = k[2] as number;
  const k1h = k[3] as number;
  let v0l = (k0l ^ 0x70736575) | 0;
  let v0h = (k0h ^ 0x736f6d65) | 0;
  let v1l = (k1l ^ 0x6e646f6d) | 0;
  let v1h = (k1h ^ 0x646f7261) | 0;
  let v2l = (k0l ^ 0x6e657261) | 0;
  let v2h = (k0h ^ 0x6c796765) | 0;
  let v3l = (k1l ^ 0x79746573) | 0;
  let v3h = (k1h ^ 0x74656462) | 0;
  let lo: number;
  let t: number;
  let mLo = 0;
  let mHi = 0;
  // blocks 0..2 are the words, block 3 the length block (24 bytes); then 4 finishing rounds
  for (let block = 0; block < 5; block++) {
    let rounds = 2;
    if (block === 0) {
      mLo = (a % TWO_32) | 0;
      mHi = Math.floor(a / TWO_32) | 0;
    } else if (block === 1) {
      mLo = (b % TWO_32) | 0;
      mHi = Math.floor(b / TWO_32) | 0;
    } else if (block === 2) {
      mLo = (c % TWO_32) | 0;
      mHi = Math.floor(c / TWO_32) | 0;
    } else if (block === 3) {
      mLo = 0;
      mHi = 24 << 24;
    } else {
      mLo = 0;
      mHi = 0;
      v2l = (v2l ^ 0xff) | 0;
      rounds = 4;
    }
    v3l = (v3l ^ mLo) | 0;
    v3h = (v3h ^ mHi) | 0;
    for (let r = 0; r < rounds; r++) {
      lo = (v0l + v1l) | 0;
      v0h = (v0h + v1h + (lo >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
      v0l = lo;
      t = (v1h << 13) | (v1l >>> 19) | 0;
      v1l = (v1l << 13) | (v1h >>> 19) | 0;
      v1h = t;
      v1l = (v1l ^ v0l) | 0;
      v1h = (v1h ^ v0h) | 0;
      t = v0l;
      v0l = v0h;
      v0h = t;
      lo = (v2l + v3l) | 0;
      v2h = (v2h + v3h + (lo >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
      v2l = lo;
      t = (v3h << 16) | (v3l >>> 16) | 0;
      v3l = (v3l << 16) | (v3h >>> 16) | 0;
      v3h = t;
      v3l = (v3l ^ v2l) | 0;
      v3h = (v3h ^ v2h) | 0;
      lo = (v0l + v3l) | 0;
      v0h = (v0h + v3h + (lo >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
      v0l = lo;
      t = (v3h << 21) | (v3l >>> 11) | 0;
      v3l = (v3l << 21) | (v3h >>> 11) | 0;
      v3h = t;
      v3l = (v3l ^ v0l) | 0;
      v3h = (v3h ^ v0h) | 0;
      lo = (v2l + v1l) | 0;
      v2h = (v2h + v1h + (lo >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
      v2l = lo;
      t = (v1h << 17) | (v1l >>> 15) | 0;
      v1l = (v1l << 17) | (v1h >>> 15) | 0;
      v1h = t;
      v1l = (v1l ^ v2l) | 0;
      v1h = (v1h ^ v2h) | 0;
      t = v2l;
      v2l = v2h;
      v2h = t;
    }
    v0l = (v0l ^ mLo) | 0;
    v0h = (v0h ^ mHi) | 0;
  }
  const outLo = (v0l ^ v1l ^ v2l ^ v3l) | 0;
  const outHi = (v0h ^ v1h ^ v2h ^ v3h) | 0;
  out[at] = outLo & 0xff;
  out[at + 1] = (outLo >>> 8) & 0xff;
  out[at + 2] = (outLo >>> 16) & 0xff;
  out[at + 3] = outLo >>> 24;
  out[at + 4] = outHi & 0xff;
  out[at + 5] = (outHi >>> 8) & 0xff;
  out[at + 6] = (outHi >>> 16) & 0xff;
  out[at + 7] = outHi >>> 24;
}
