// A self-signed X.509 certificate built with node:crypto alone, for the proxy's TLS test mode
// (upstream tlsTestModeEnable generates one at start too). Node can parse certificates but not build
// them, so the DER here is assembled by hand: a v3 certificate with an ECDSA P-256 key, a
// subjectAltName for the given DNS names and IPv4 addresses, signed with its own key. RocketMQ
// clients that use TLS do not verify the proxy's certificate by default, so any valid certificate
// works; the SAN entries let clients that do verify trust it explicitly.

import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { isIPv4 } from "node:net";

export interface SelfSignedCertificateOptions {
  commonName?: string;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  validityDays?: number;
  /** Defaults to now; for tests. */
  now?: Date;
}

export interface CertificateAndKey {
  /** PEM "CERTIFICATE". */
  cert: string;
  /** PEM "PRIVATE KEY" (PKCS#8). */
  key: string;
}

/** Ten years: a test-mode certificate should not expire under a long-running process. */
export const DEFAULT_SELF_SIGNED_VALIDITY_DAYS = 3650;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Certificates are valid from a day earlier, so client clock skew does not reject them. */
const NOT_BEFORE_SKEW_MS = DAY_MS;

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
} as const;

const Tag = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  SEQUENCE: 0x30,
  SET: 0x31,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  CONTEXT_0: 0xa0,
  CONTEXT_3: 0xa3,
  SAN_DNS: 0x82,
  SAN_IP: 0x87,
  BOOLEAN: 0x01,
} as const;

export function generateSelfSignedCertificate(options: SelfSignedCertificateOptions = {}): CertificateAndKey {
  const now = options.now ?? new Date();
  const validityDays = options.validityDays ?? DEFAULT_SELF_SIGNED_VALIDITY_DAYS;
  const dnsNames = options.dnsNames ?? ["localhost"];
  const ipAddresses = (options.ipAddresses ?? ["127.0.0.1"]).filter((ip) => isIPv4(ip));
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const spki = publicKey.export({ type: "spki", format: "der" });

  const name = der(Tag.SEQUENCE, [
    der(Tag.SET, [
      der(Tag.SEQUENCE, [
        oid(OID.commonName),
        der(Tag.UTF8_STRING, utf8(options.commonName ?? "rocketmq-proxy")),
      ]),
    ]),
  ]);
  const signatureAlgorithm = der(Tag.SEQUENCE, [oid(OID.ecdsaWithSha256)]);
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f; // positive INTEGER
  if (serial[0] === 0) serial[0] = 1; // and minimally encoded
  const notBefore = new Date(now.getTime() - NOT_BEFORE_SKEW_MS);
  const notAfter = new Date(now.getTime() + validityDays * DAY_MS);

  const sanEntries = [
    ...dnsNames.map((n) => der(Tag.SAN_DNS, Buffer.from(n, "ascii"))),
    ...ipAddresses.map((ip) => der(Tag.SAN_IP, Buffer.from(ip.split(".").map(Number)))),
  ];
  const extensions: Buffer[] = [
    // basicConstraints: not a CA (empty SEQUENCE = defaults)
    der(Tag.SEQUENCE, [
      oid(OID.basicConstraints),
      der(Tag.BOOLEAN, Buffer.from([0xff])),
      der(Tag.OCTET_STRING, der(Tag.SEQUENCE, [])),
    ]),
  ];
  if (sanEntries.length > 0) {
    extensions.push(
      der(Tag.SEQUENCE, [oid(OID.subjectAltName), der(Tag.OCTET_STRING, der(Tag.SEQUENCE, sanEntries))]),
    );
  }

  const tbs = der(Tag.SEQUENCE, [
    der(Tag.CONTEXT_0, der(Tag.INTEGER, Buffer.from([2]))), // version v3
    der(Tag.INTEGER, serial),
    signatureAlgorithm,
    name, // issuer
    der(Tag.SEQUENCE, [time(notBefore), time(notAfter)]),
    name, // subject
    spki,
    der(Tag.CONTEXT_3, der(Tag.SEQUENCE, extensions)),
  ]);
  const signature = sign("sha256", tbs, privateKey); // DER ECDSA-Sig-Value
  const certificate = der(Tag.SEQUENCE, [
    tbs,
    signatureAlgorithm,
    der(Tag.BIT_STRING, Buffer.concat([Buffer.from([0]), signature])),
  ]);

  return {
    cert: pem("CERTIFICATE", certificate),
    key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}

function der(tag: number, content: Buffer | readonly Buffer[]): Buffer {
  const body = Buffer.isBuffer(content) ? content : Buffer.concat(content as Buffer[]);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const [a = 0, b = 0, ...rest] = parts;
  const bytes = [40 * a + b];
  for (const part of rest) {
    const chunk = [part & 0x7f];
    for (let n = Math.floor(part / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift((n & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return der(Tag.OID, Buffer.from(bytes));
}

/** UTCTime until 2049, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5). */
function time(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = date.getUTCFullYear();
  if (year < 2050) return der(Tag.UTC_TIME, Buffer.from(digits.slice(2), "ascii"));
  return der(Tag.GENERALIZED_TIME, Buffer.from(digits, "ascii"));
}

function utf8(s: string): Buffer {
  return Buffer.from(s, "utf8");
}

function pem(label: string, body: Buffer): string {
  const base64 = body.toString("base64").replace(/(.{64})/g, "$1\n");
  return `-----BEGIN ${label}-----\n${base64}${base64.endsWith("\n") ? "" : "\n"}-----END ${label}-----\n`;
}
