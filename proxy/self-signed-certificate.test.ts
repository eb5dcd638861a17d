import { createPrivateKey, X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";
import { describe, expect, it } from "vitest";
import { generateSelfSignedCertificate } from "./self-signed-certificate.ts";

describe("self-signed certificate", () => {
  it("is a valid v3 certificate signed by its own key, with the requested names", () => {
    const now = new Date("2026-06-01T00:00:00Z");
    const { cert, key } = generateSelfSignedCertificate({
      commonName: "proxy-test",
      dnsNames: ["localhost", "proxy.example"],
      ipAddresses: ["127.0.0.1", "10.0.0.7", "::1"],
      validityDays: 30,
      now,
    });
    const x509 = new X509Certificate(cert);
    expect(x509.subject).toBe("CN=proxy-test");
    expect(x509.issuer).toBe("CN=proxy-test");
    expect(x509.verify(x509.publicKey)).toBe(true);
    expect(x509.subjectAltName).toBe(
      "DNS:localhost, DNS:proxy.example, IP Address:127.0.0.1, IP Address:10.0.0.7",
    );
    expect(x509.checkHost("proxy.example")).toBe("proxy.example");
    expect(x509.checkIP("10.0.0.7")).toBe("10.0.0.7");
    expect(x509.ca).toBe(false);
    expect(new Date(x509.validFrom).getTime()).toBeLessThan(now.getTime());
    expect(new Date(x509.validTo).getTime()).toBe(now.getTime() + 30 * 24 * 3600 * 1000);
    expect(x509.checkPrivateKey(createPrivateKey(key))).toBe(true);
    expect(() => createSecureContext({ cert, key })).not.toThrow();
  });

  it("uses GeneralizedTime for dates from 2050 on", () => {
    const { cert } = generateSelfSignedCertificate({
      now: new Date("2049-12-01T00:00:00Z"),
      validityDays: 60,
    });
    const x509 = new X509Certificate(cert);
    expect(new Date(x509.validTo).getUTCFullYear()).toBe(2050);
  });

  it("makes a fresh key and serial each time", () => {
    const a = new X509Certificate(generateSelfSignedCertificate().cert);
    const b = new X509Certificate(generateSelfSignedCertificate().cert);
    expect(a.serialNumber).not.toBe(b.serialNumber);
    expect(a.fingerprint256).not.toBe(b.fingerprint256);
  });
});
