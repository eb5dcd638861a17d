// The body digest a delivered message carries (SystemProperties.body_digest), in the form the
// receiving SDK checks. The SDKs recompute the digest of the body they got and mark the message
// corrupted (and drop it) when the strings differ, so the string must match their code exactly:
//
//   MD5    upper-case hex of the MD5 — what the upstream proxy always sends and what the Java and
//          Node SDKs (and most others) compare against; the default whenever the client is unknown.
//   CRC32  the IEEE CRC-32 of the body, written as each SDK writes it:
//          Node (rocketmq-client-nodejs util crc32CheckSum): unsigned decimal, "3632233996";
//          Java (client-java misc/Utilities.crc32CheckSum): Long.toHexString upper-cased, no
//                 zero padding, "D87F7E0C";
//          Go (golang message.go): upper-cased FormatInt(…, 16) in the current SDK, lower-case in older
//                 ones — no single string suits both, so Go clients get MD5 (upper-case, as the
//                 upstream proxy sends and the current Go SDK compares).
//
// CRC-32 costs about a tenth of MD5 per KiB (common/crc32.ts vs crypto's md5 here), and the digest is
// computed once per delivered message. The body is the exact bytes put on the wire (the proxy always
// delivers IDENTITY-encoded, uncompressed bodies), so the digest is computed over them, never taken
// from the store record (whose body CRC is masked to 31 bits and covers the stored, maybe compressed, body).
//
// Which SDK is calling: the Language in the user agent of its Telemetry Settings when the session
// has them (the Node SDK sends x-mq-language "HTTP", so the header alone does not tell Node apart),
// else the x-mq-language header ("JAVA", "GO"); anything else gets MD5.

import { hash } from "node:crypto";
import { crc32 } from "../common/crc32.ts";
import { DigestType, Language } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";

export const BodyDigestFormat = {
  MD5_UPPER_HEX: "MD5_UPPER_HEX",
  CRC32_DECIMAL: "CRC32_DECIMAL",
  CRC32_UPPER_HEX: "CRC32_UPPER_HEX",
} as const;
export type BodyDigestFormat = (typeof BodyDigestFormat)[keyof typeof BodyDigestFormat];

/** x-mq-language value of the Java SDK, whose CRC32 format is known. */
const JAVA_LANGUAGE_HEADER = "JAVA";

/**
 * The digest format for a client: `userAgentLanguage` from its Settings (undefined when it has sent
 * none yet), `languageHeader` the x-mq-language of the call.
 */
export function bodyDigestFormatOf(
  userAgentLanguage: Language | undefined,
  languageHeader: string,
): BodyDigestFormat {
  switch (userAgentLanguage) {
    case Language.NODE_JS:
      return BodyDigestFormat.CRC32_DECIMAL;
    case Language.JAVA:
      return BodyDigestFormat.CRC32_UPPER_HEX;
    case undefined:
    case Language.LANGUAGE_UNSPECIFIED:
      break;
    default:
      return BodyDigestFormat.MD5_UPPER_HEX;
  }
  if (languageHeader === JAVA_LANGUAGE_HEADER) return BodyDigestFormat.CRC32_UPPER_HEX;
  return BodyDigestFormat.MD5_UPPER_HEX;
}

export interface BodyDigest {
  type: DigestType;
  checksum: string;
}

/** Upper-case hex MD5 (what every SDK accepts). */
export function md5UpperHex(body: Uint8Array): string {
  // crypto.hash: one call, no Hash object
  return hash("md5", body, "hex").toUpperCase();
}

/** The digest of `body` in `format`. */
export function bodyDigest(body: Uint8Array, format: BodyDigestFormat): BodyDigest {
  switch (format) {
    case BodyDigestFormat.CRC32_DECIMAL:
      return { type: DigestType.CRC32, checksum: String(crc32(body)) };
    case BodyDigestFormat.CRC32_UPPER_HEX:
      return { type: DigestType.CRC32, checksum: crc32(body).toString(16).toUpperCase() };
    default:
      return { type: DigestType.MD5, checksum: md5UpperHex(body) };
  }
}
