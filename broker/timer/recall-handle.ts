// The recall handle a send of a timer message returns (upstream RecallMessageHandle.HandleV1): the
// URL-safe Base64 (with padding, as Java's Base64.getUrlEncoder) of
// `v1 {topic} {brokerName} {timestampMs} {messageId}`, where timestampMs is the message's TIMER_OUT_MS + 1
// and messageId its UNIQ_KEY. Decoding is strict: anything else is RmqError(IllegalArgument), never
// another exception.

import { ErrorCode, RmqError } from "../../common/errors.ts";

const VERSION_1 = "v1";
const SEPARATOR = " ";
/** Longest handle accepted (topic 255 + broker name + id stay far below; bounds the decode work). */
const MAX_HANDLE_LENGTH = 2048;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]+={0,2}$/;
const INTEGER_PATTERN = /^-?\d{1,16}$/;

export interface RecallHandle {
  topic: string;
  brokerName: string;
  /** TIMER_OUT_MS + 1 of the message. */
  timestampMs: number;
  /** The message's UNIQ_KEY. */
  messageId: string;
}

export function encodeRecallHandle(h: RecallHandle): string {
  const raw = [VERSION_1, h.topic, h.brokerName, String(h.timestampMs), h.messageId].join(SEPARATOR);
  const b64 = Buffer.from(raw, "utf8").toString("base64url");
  return b64 + "=".repeat((4 - (b64.length % 4)) % 4);
}

function invalid(why: string): RmqError {
  return new RmqError(ErrorCode.IllegalArgument, `recall handle is invalid: ${why}`);
}

export function decodeRecallHandle(handle: string): RecallHandle {
  if (typeof handle !== "string" || handle.length === 0) throw invalid("it is empty");
  if (handle.length > MAX_HANDLE_LENGTH) throw invalid(`longer than ${MAX_HANDLE_LENGTH} characters`);
  if (!BASE64URL_PATTERN.test(handle) || handle.length % 4 === 1) throw invalid("not URL-safe Base64");
  const raw = Buffer.from(handle, "base64url").toString("utf8");
  const items = raw.split(SEPARATOR);
  if (items[0] !== VERSION_1) throw invalid("unknown version");
  if (items.length !== 5 || items.some((s) => s.length === 0)) throw invalid("expected 5 fields");
  const [, topic, brokerName, ts, messageId] = items as [string, string, string, string, string];
  if (!INTEGER_PATTERN.test(ts)) throw invalid("the timestamp is not an integer");
  return { topic, brokerName, timestampMs: Number(ts), messageId };
}
