// Message ids. The offset msgId names a record by its store host and CommitLog offset (no index needed to
// find it); UNIQ_KEY is the client-side id, generated here in the 5.x client format for messages that
// arrive without one.
import { randomBytes } from "node:crypto";
import { networkInterfaces } from "node:os";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { bytesToIp, type HostAddress, ipToBytes } from "./host-address.ts";

/** Upper-case hex of every byte value: ids are built on the put path, so no toString(16) per call. */
const BYTE_HEX: readonly string[] = Array.from({ length: 256 }, (_, i) =>
  i.toString(16).toUpperCase().padStart(2, "0"),
);

function byteHex(x: number): string {
  return BYTE_HEX[x & 0xff] as string;
}

function hexOf(b: Uint8Array, pos: number, len: number): string {
  let s = "";
  for (let i = pos; i < pos + len; i++) s += byteHex(b[i] ?? 0);
  return s;
}

const HEX_DIGITS = Buffer.from("0123456789ABCDEF", "latin1");

/** Writes the 8 upper-case hex digits of the low 32 bits of `v` at `pos`. */
function putHex32(b: Buffer, pos: number, v: number): void {
  let x = v >>> 0;
  for (let i = pos + 7; i >= pos; i--) {
    b[i] = HEX_DIGITS[x & 15] as number;
    x >>>= 4;
  }
}

function hex32(v: number): string {
  return byteHex(v >>> 24) + byteHex(v >>> 16) + byteHex(v >>> 8) + byteHex(v);
}

/** 16 upper-case hex digits of a non-negative 64-bit offset. */
export function offsetHex(offset: number): string {
  return hex32(Math.floor(offset / 4294967296)) + hex32(offset % 4294967296);
}

/** Hex of `address + port` (8 or 20 bytes); a store precomputes this once for its host. */
export function hostHex(host: HostAddress): string {
  const ip = ipToBytes(host.address);
  const b = new Uint8Array(ip.length + 4);
  b.set(ip, 0);
  new DataView(b.buffer).setInt32(ip.length, host.port);
  return hexOf(b, 0, b.length);
}

/**
 * Offset msgIds of one store host, built in a scratch buffer and read back as one flat string (the put
 * path makes one per message; string concatenation would leave a chain of pieces to flatten later).
 */
export class OffsetMsgIdEncoder {
  private readonly scratch: Buffer;
  private readonly offsetPos: number;

  constructor(host: HostAddress) {
    const prefix = hostHex(host);
    this.offsetPos = prefix.length;
    this.scratch = Buffer.alloc(prefix.length + 16);
    this.scratch.write(prefix, 0, "latin1");
  }

  /** The msgId of the record at CommitLog offset `offset` (non-negative, below 2^53). */
  encode(offset: number): string {
    const b = this.scratch;
    putHex32(b, this.offsetPos, Math.floor(offset / 4294967296));
    putHex32(b, this.offsetPos + 8, offset % 4294967296);
    return b.toString("latin1");
  }
}

/** Offset msgId from the STOREHOST bytes of a record (address then port, as in the record) and its offset. */
export function offsetMsgIdFromRecord(
  buf: Uint8Array,
  storeHostPos: number,
  storeHostLen: number,
  offset: number,
): string {
  return hexOf(buf, storeHostPos, storeHostLen) + offsetHex(offset);
}

/** Store host and CommitLog offset named by an offset msgId (32 hex digits for IPv4, 56 for IPv6). */
export function decodeOffsetMsgId(msgId: string): { storeHost: HostAddress; commitLogOffset: number } {
  if ((msgId.length !== 32 && msgId.length !== 56) || !/^[0-9A-Fa-f]+$/.test(msgId)) {
    throw new RmqError(ErrorCode.IllegalArgument, `not an offset message id: ${msgId}`);
  }
  const b = Buffer.from(msgId, "hex");
  const ipLen = b.length - 12;
  const port = b.readInt32BE(ipLen);
  const offset = b.readInt32BE(ipLen + 4) * 4294967296 + b.readUInt32BE(ipLen + 8);
  return { storeHost: { address: bytesToIp(b, 0, ipLen), port }, commitLogOffset: offset };
}

// --- UNIQ_KEY, 5.x client format: version 01, MAC 6, pid 2, seconds since 2021-01-01Z 4, sequence 4.
const UNIQ_KEY_VERSION = "01";
const UNIQ_KEY_EPOCH_SECONDS = Date.UTC(2021, 0, 1) / 1000;

function localMacHex(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const ni of list ?? []) {
      if (!ni.internal && ni.mac && ni.mac !== "00:00:00:00:00:00")
        return ni.mac.replaceAll(":", "").toUpperCase();
    }
  }
  return randomBytes(6).toString("hex").toUpperCase();
}

const uniqKeyPrefix =
  UNIQ_KEY_VERSION + localMacHex() + (process.pid & 0xffff).toString(16).toUpperCase().padStart(4, "0");
/** Where the seconds and the sequence go in a UNIQ_KEY. */
const UNIQ_KEY_SECONDS_POS = uniqKeyPrefix.length;
const UNIQ_KEY_SEQUENCE_POS = UNIQ_KEY_SECONDS_POS + 8;
const UNIQ_KEY_LENGTH = UNIQ_KEY_SEQUENCE_POS + 8;
/** The key is assembled as bytes and read back once: a flat string, cheap to hash and to encode. */
const uniqKeyScratch = Buffer.alloc(UNIQ_KEY_LENGTH);
uniqKeyScratch.write(uniqKeyPrefix, 0, "latin1");
let uniqKeySeconds = -1;
let uniqKeySequence = 0;

/** A fresh UNIQ_KEY (34 upper-case hex digits), unique per process and second by its sequence. */
export function createUniqKey(nowMs: number = Date.now()): string {
  const secs = Math.floor(nowMs / 1000) - UNIQ_KEY_EPOCH_SECONDS;
  if (secs !== uniqKeySeconds) {
    uniqKeySeconds = secs;
    putHex32(uniqKeyScratch, UNIQ_KEY_SECONDS_POS, secs);
  }
  putHex32(uniqKeyScratch, UNIQ_KEY_SEQUENCE_POS, uniqKeySequence);
  uniqKeySequence = (uniqKeySequence + 1) >>> 0;
  return uniqKeyScratch.toString("latin1", 0, UNIQ_KEY_LENGTH);
}
