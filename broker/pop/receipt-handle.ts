// Receipt handles: the opaque string a popped message carries and that ack, changeInvisibleTime and
// forwardToDeadLetterQueue take back. It names the same things upstream's POP_CK extra info does
// (check point queue offset, pop time, invisible time, revive queue, broker, queue, queue offset,
// CommitLog offset) plus the message's index in its check point and the topic it was popped from.
//
//   base64url(payload) "." MAC, payload = "2 <ckOffset> <popTime> <invisibleTime> <reviveQid> <index>
//   <brokerName> <topic> <queueId> <queueOffset> <commitLogOffset>",
//   MAC = the first 22 characters (132 bits) of base64url(SHA3-256(hex(key) " " payload)).
//
// The MAC (key kept in the broker's config directory, so handles survive restarts) makes a garbled or
// forged handle fail before anything is looked up. A handle expires at popTime + invisibleTime.
//
// Version 2 keys SHA3-256 with a secret prefix: the sponge has no length extension, so this is a
// sound MAC (the construction KMAC standardises), and it is one native call on a string, about a
// quarter of the cost of an HMAC object per handle (a pop issues one handle per message). Version 1
// handles (MAC = HMAC-SHA256(key, payload) truncated to 16 bytes) are still accepted, so handles
// issued before an upgrade stay valid after it.

import { createHmac, createSecretKey, hash, type KeyObject, randomBytes, timingSafeEqual } from "node:crypto";
import { join } from "node:path";
import { corruptFileError, readFileIfExists, writeFileAtomic } from "../../common/atomic-file.ts";
import { ErrorCode, RmqError } from "../../common/errors.ts";

/** Handles issued before version 2: HMAC-SHA256 MAC. */
const HANDLE_VERSION_HMAC = "1";
/** Handles issued now: keyed SHA3-256 MAC. */
const HANDLE_VERSION = "2";
const FIELD_COUNT = 11;
/** Bytes of the HMAC kept in a version 1 handle (128 bits). */
const MAC_LENGTH = 16;
/** base64url characters of the SHA3 digest kept in a version 2 handle (132 bits). */
const MAC_CHARS = 22;
const KEY_LENGTH = 32;
/** Longest handle accepted for decoding (ours): topic 255 + broker name + numbers, base64-expanded, with room. */
export const MAX_RECEIPT_HANDLE_LENGTH = 1024;
/** File under `{storePathRootDir}/config` holding the MAC key (hex). */
export const RECEIPT_HANDLE_KEY_FILE = "popReceiptHandleKey";

export interface ReceiptHandle {
  /** Queue offset of the check point in its revive queue. */
  ckOffset: number;
  popTime: number;
  invisibleTime: number;
  reviveQid: number;
  /** Position of the message in its check point. */
  index: number;
  brokerName: string;
  /** The topic the message was popped from: the subscribed topic or the group's pop retry topic. */
  topic: string;
  queueId: number;
  queueOffset: number;
  commitLogOffset: number;
}

/** When the handle stops being valid (epoch ms). */
export function receiptHandleExpiry(h: ReceiptHandle): number {
  return h.popTime + h.invisibleTime;
}

function invalid(why: string): RmqError {
  return new RmqError(ErrorCode.InvalidReceiptHandle, `receipt handle is invalid: ${why}`);
}

const NUMBER = /^(0|[1-9]\d{0,15})$/;

function parseNumber(s: string | undefined): number {
  if (s === undefined || !NUMBER.test(s)) return Number.NaN;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : Number.NaN;
}

export class ReceiptHandleCodec {
  /** A KeyObject, made once: createHmac with raw key bytes re-imports the key on every call (~7x slower). */
  private readonly key: KeyObject;
  /** What the version 2 MAC hashes before the payload: the key in hex and a space. */
  private readonly macPrefix: string;

  constructor(key: Uint8Array) {
    if (key.length < 16)
      throw new RmqError(ErrorCode.IllegalArgument, "receipt handle key must be at least 16 bytes");
    this.key = createSecretKey(key);
    this.macPrefix = `${Buffer.from(key).toString("hex")} `;
  }

  /** The version 1 MAC (decoding only). */
  private hmac(payload: string): Buffer {
    return createHmac("sha256", this.key).update(payload).digest().subarray(0, MAC_LENGTH);
  }

  /** The version 2 MAC, in its base64url form. */
  private mac(payload: string): string {
    return hash("sha3-256", this.macPrefix + payload, "base64url").slice(0, MAC_CHARS);
  }

  encode(h: ReceiptHandle): string {
    const payload = `${HANDLE_VERSION} ${h.ckOffset} ${h.popTime} ${h.invisibleTime} ${h.reviveQid} ${h.index} ${h.brokerName} ${h.topic} ${h.queueId} ${h.queueOffset} ${h.commitLogOffset}`;
    return `${Buffer.from(payload, "utf8").toString("base64url")}.${this.mac(payload)}`;
  }

  /** Parses and authenticates a handle; throws RmqError(INVALID_RECEIPT_HANDLE) for anything else. Expiry is the caller's check. */
  decode(handle: string): ReceiptHandle {
    if (typeof handle !== "string" || handle.length === 0) throw invalid("empty");
    if (handle.length > MAX_RECEIPT_HANDLE_LENGTH)
      throw invalid(`longer than ${MAX_RECEIPT_HANDLE_LENGTH} characters`);
    const dot = handle.indexOf(".");
    if (dot <= 0 || dot !== handle.lastIndexOf(".")) throw invalid("malformed");
    const payloadB64 = handle.slice(0, dot);
    const macB64 = handle.slice(dot + 1);
    if (!/^[A-Za-z0-9_-]+$/.test(payloadB64) || !/^[A-Za-z0-9_-]+$/.test(macB64)) throw invalid("malformed");
    const payload = Buffer.from(payloadB64, "base64url").toString("utf8");
    // Only the canonical encoding is accepted, so no other string passes for the same handle.
    if (Buffer.from(payload, "utf8").toString("base64url") !== payloadB64) throw invalid("malformed");
    const version = payload.slice(0, payload.indexOf(" "));
    let given: Buffer;
    let want: Buffer;
    if (version === HANDLE_VERSION) {
      given = Buffer.from(macB64, "latin1");
      want = Buffer.from(this.mac(payload), "latin1");
    } else if (version === HANDLE_VERSION_HMAC) {
      given = Buffer.from(macB64, "base64url");
      if (given.toString("base64url") !== macB64) throw invalid("malformed");
      want = this.hmac(payload);
    } else {
      throw invalid("unknown format");
    }
    if (given.length !== want.length || !timingSafeEqual(given, want))
      throw invalid("check failed (garbled, forged or from another broker)");
    const f = payload.split(" ");
    if (f.length !== FIELD_COUNT) throw invalid("unknown format");
    const h: ReceiptHandle = {
      ckOffset: parseNumber(f[1]),
      popTime: parseNumber(f[2]),
      invisibleTime: parseNumber(f[3]),
      reviveQid: parseNumber(f[4]),
      index: parseNumber(f[5]),
      brokerName: f[6] ?? "",
      topic: f[7] ?? "",
      queueId: parseNumber(f[8]),
      queueOffset: parseNumber(f[9]),
      commitLogOffset: parseNumber(f[10]),
    };
    for (const [k, v] of Object.entries(h)) {
      if (typeof v === "number" && Number.isNaN(v)) throw invalid(`bad field ${k}`);
    }
    if (h.brokerName.length === 0 || h.topic.length === 0) throw invalid("missing broker or topic");
    return h;
  }
}

/**
 * The MAC key of this broker: read from `{configDir}/popReceiptHandleKey`, created (random, written
 * atomically) on first start. A file that is not a hex key stops the start: replacing it silently
 * would invalidate every handle in flight.
 */
export async function loadReceiptHandleKey(configDir: string): Promise<Buffer> {
  const file = join(configDir, RECEIPT_HANDLE_KEY_FILE);
  const text = await readFileIfExists(file);
  if (text !== undefined) {
    const hex = text.trim();
    if (!/^[0-9a-f]+$/i.test(hex) || hex.length < 32 || hex.length % 2 !== 0) {
      throw corruptFileError(file, "expected a hex key of at least 16 bytes");
    }
    return Buffer.from(hex, "hex");
  }
  const key = randomBytes(KEY_LENGTH);
  await writeFileAtomic(file, `${key.toString("hex")}\n`);
  return key;
}
