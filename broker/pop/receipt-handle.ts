// Receipt handles: the opaque string a popped message carries and that ack, changeInvisibleTime and
// forwardToDeadLetterQueue take back. It names the same things upstream's POP_CK extra info does
// (check point queue offset, pop time, invisible time, revive queue, broker, queue, queue offset,
// CommitLog offset) plus the message's index in its check point and the topic it was popped from.
//
// A handle names the same things upstream's POP_CK extra info does (check point queue offset, pop
// time, invisible time, revive queue, broker, queue, queue offset, CommitLog offset) plus the
// message's index in its check point and the topic it was popped from, and carries a MAC (key kept
// in the broker's config directory, so handles survive restarts) that makes a garbled or forged
// handle fail before anything is looked up. A handle expires at popTime + invisibleTime.
//
// Version 3 (issued now), plain text as upstream's handles, built for a pop that issues one handle
// per message, 32 per check point:
//   "3 <ckOffset> <popTime> <invisibleTime> <reviveQid> <index> <brokerName> <topic> <queueId>
//   <queueOffset> <commitLogOffset> <MAC>"
//   K   = SHA3-256(hex(key) " 3 " ckOffset popTime invisibleTime reviveQid brokerName topic queueId),
//         the check point's own 256-bit key (one native call per check point, cached while its
//         messages are encoded or decoded);
//   MAC = base64url(SipHash-2-4(K[0..16], m) || SipHash-2-4(K[16..32], m)), 22 characters (128 bits),
//         m = index, queueOffset, commitLogOffset as three little-endian 64-bit words.
// Keyed SHA3 with a secret prefix is a sound PRF (no length extension; what KMAC standardises) and
// SipHash is a PRF under its key, so the MAC authenticates every field. Per message this costs two
// SipHash runs in JS instead of one SHA3 call and a base64 encoding of the payload (about a third).
// Broker or topic names that are not printable ASCII without spaces get a version 2 handle.
//
// Older handles, still accepted so that handles issued before an upgrade stay valid after it:
//   base64url(payload) "." MAC, payload = "<version> <ckOffset> <popTime> <invisibleTime> <reviveQid>
//   <index> <brokerName> <topic> <queueId> <queueOffset> <commitLogOffset>";
//   version 2: MAC = the first 22 characters of base64url(SHA3-256(hex(key) " " payload));
//   version 1: MAC = base64url(HMAC-SHA256(key, payload) truncated to 16 bytes).

import { createHmac, createSecretKey, hash, type KeyObject, randomBytes, timingSafeEqual } from "node:crypto";
import { join } from "node:path";
import { corruptFileError, readFileIfExists, writeFileAtomic } from "../../common/atomic-file.ts";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { type SipKey, sipHash24Words, sipKey } from "./siphash.ts";

/** Handles issued before version 2: HMAC-SHA256 MAC. */
const HANDLE_VERSION_HMAC = "1";
/** Handles issued before version 3: keyed SHA3-256 MAC over the whole payload. */
const HANDLE_VERSION_SHA3 = "2";
/** Handles issued now: per check point SHA3-derived key, per message SipHash MAC. */
const HANDLE_VERSION = "3";
const FIELD_COUNT = 11;
/** Bytes of the HMAC kept in a version 1 handle (128 bits). */
const MAC_LENGTH = 16;
/** base64url characters of the SHA3 digest kept in a version 2 handle (132 bits). */
const MAC_CHARS = 22;
/** Bytes of a version 3 MAC: two SipHash-2-4 outputs. */
const SIP_MAC_BYTES = 16;
/** Fields of a version 3 handle: the payload's 11 and the MAC. */
const PLAIN_FIELD_COUNT = FIELD_COUNT + 1;
/** Names a version 3 handle can carry: printable ASCII without spaces. */
const PLAIN_NAME = /^[\x21-\x7e]+$/;
const PLAIN_PREFIX = `${HANDLE_VERSION} `;
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
  /** What the version 2 MAC and the version 3 check point key hash first: the key in hex and a space. */
  private readonly macPrefix: string;
  /** The check point of the last version 3 handle encoded or decoded, and its two SipHash keys. */
  private cachedCk: CheckPointKeyFields | undefined;
  private cachedKeys: [SipKey, SipKey] = [new Uint32Array(4), new Uint32Array(4)];
  /** Broker and topic names last found fit for a version 3 handle. */
  private plainBroker = "";
  private plainTopic = "";
  private readonly macBytes = Buffer.alloc(SIP_MAC_BYTES);

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

  /** The version 2 MAC, in its base64url form (decoding only). */
  private sha3Mac(payload: string): string {
    return hash("sha3-256", this.macPrefix + payload, "base64url").slice(0, MAC_CHARS);
  }

  /** The version 3 MAC, in its base64url form. */
  private sipMac(
    h: CheckPointKeyFields,
    index: number,
    queueOffset: number,
    commitLogOffset: number,
  ): string {
    const c = this.cachedCk;
    if (
      c === undefined ||
      c.ckOffset !== h.ckOffset ||
      c.popTime !== h.popTime ||
      c.invisibleTime !== h.invisibleTime ||
      c.reviveQid !== h.reviveQid ||
      c.queueId !== h.queueId ||
      c.brokerName !== h.brokerName ||
      c.topic !== h.topic
    ) {
      const k = hash(
        "sha3-256",
        `${this.macPrefix}${HANDLE_VERSION} ${h.ckOffset} ${h.popTime} ${h.invisibleTime} ${h.reviveQid} ${h.brokerName} ${h.topic} ${h.queueId}`,
        "buffer",
      );
      this.cachedKeys = [sipKey(k.subarray(0, 16)), sipKey(k.subarray(16, 32))];
      this.cachedCk = {
        ckOffset: h.ckOffset,
        popTime: h.popTime,
        invisibleTime: h.invisibleTime,
        reviveQid: h.reviveQid,
        queueId: h.queueId,
        brokerName: h.brokerName,
        topic: h.topic,
      };
    }
    const out = this.macBytes;
    sipHash24Words(this.cachedKeys[0], index, queueOffset, commitLogOffset, out, 0);
    sipHash24Words(this.cachedKeys[1], index, queueOffset, commitLogOffset, out, 8);
    return out.toString("base64url");
  }

  /** Whether the names fit a version 3 handle (checked once per name pair in a row). */
  private plainNames(brokerName: string, topic: string): boolean {
    if (brokerName === this.plainBroker && topic === this.plainTopic) return true;
    if (!PLAIN_NAME.test(brokerName) || !PLAIN_NAME.test(topic)) return false;
    this.plainBroker = brokerName;
    this.plainTopic = topic;
    return true;
  }

  encode(h: ReceiptHandle): string {
    if (!this.plainNames(h.brokerName, h.topic)) {
      const payload = `${HANDLE_VERSION_SHA3} ${h.ckOffset} ${h.popTime} ${h.invisibleTime} ${h.reviveQid} ${h.index} ${h.brokerName} ${h.topic} ${h.queueId} ${h.queueOffset} ${h.commitLogOffset}`;
      return `${Buffer.from(payload, "utf8").toString("base64url")}.${this.sha3Mac(payload)}`;
    }
    const mac = this.sipMac(h, h.index, h.queueOffset, h.commitLogOffset);
    return `${HANDLE_VERSION} ${h.ckOffset} ${h.popTime} ${h.invisibleTime} ${h.reviveQid} ${h.index} ${h.brokerName} ${h.topic} ${h.queueId} ${h.queueOffset} ${h.commitLogOffset} ${mac}`;
  }

  /** A version 3 handle's fields, authenticated. */
  private decodePlain(handle: string): ReceiptHandle {
    const f = handle.split(" ");
    if (f.length !== PLAIN_FIELD_COUNT) throw invalid("malformed");
    const h = handleFields(f);
    if (!PLAIN_NAME.test(h.brokerName) || !PLAIN_NAME.test(h.topic)) throw invalid("malformed");
    const given = Buffer.from(f[11] ?? "", "latin1");
    const want = Buffer.from(this.sipMac(h, h.index, h.queueOffset, h.commitLogOffset), "latin1");
    if (given.length !== want.length || !timingSafeEqual(given, want))
      throw invalid("check failed (garbled, forged or from another broker)");
    return h;
  }

  /** Parses and authenticates a handle; throws RmqError(INVALID_RECEIPT_HANDLE) for anything else. Expiry is the caller's check. */
  decode(handle: string): ReceiptHandle {
    if (typeof handle !== "string" || handle.length === 0) throw invalid("empty");
    if (handle.length > MAX_RECEIPT_HANDLE_LENGTH)
      throw invalid(`longer than ${MAX_RECEIPT_HANDLE_LENGTH} characters`);
    if (handle.startsWith(PLAIN_PREFIX)) return this.decodePlain(handle);
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
    if (version === HANDLE_VERSION_SHA3) {
      given = Buffer.from(macB64, "latin1");
      want = Buffer.from(this.sha3Mac(payload), "latin1");
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
    const h = handleFields(f);
    return h;
  }
}

/** The fields a version 3 check point key covers. */
type CheckPointKeyFields = Pick<
  ReceiptHandle,
  "ckOffset" | "popTime" | "invisibleTime" | "reviveQid" | "queueId" | "brokerName" | "topic"
>;

/** The handle fields from a split payload (the version first), checked for shape. */
function handleFields(f: readonly string[]): ReceiptHandle {
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
  checkFields(h);
  return h;
}

function checkFields(h: ReceiptHandle): void {
  for (const [k, v] of Object.entries(h)) {
    if (typeof v === "number" && Number.isNaN(v)) throw invalid(`bad field ${k}`);
  }
  if (h.brokerName.length === 0 || h.topic.length === 0) throw invalid("missing broker or topic");
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
