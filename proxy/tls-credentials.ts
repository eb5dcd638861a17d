// Where the proxy's TLS certificate comes from: PEM text or files when configured (upstream
// tlsCertPath / tlsKeyPath), otherwise a self-signed one made at start (upstream tlsTestModeEnable).

import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { generateSelfSignedCertificate } from "./self-signed-certificate.ts";

export interface TlsOptions {
  /** PEM certificate chain, or a path to it. */
  cert?: string;
  certPath?: string;
  /** PEM private key, or a path to it. */
  key?: string;
  keyPath?: string;
}

export interface TlsCredentials {
  cert: string;
  key: string;
  /** True when no certificate was configured and a self-signed one was generated. */
  selfSigned: boolean;
}

export async function resolveTlsCredentials(options: TlsOptions = {}): Promise<TlsCredentials> {
  const cert =
    options.cert ?? (options.certPath === undefined ? undefined : await readFile(options.certPath, "utf8"));
  const key =
    options.key ?? (options.keyPath === undefined ? undefined : await readFile(options.keyPath, "utf8"));
  if (cert !== undefined && key !== undefined) return { cert, key, selfSigned: false };
  if (cert !== undefined || key !== undefined) {
    throw new RmqError(
      ErrorCode.IllegalConfig,
      "TLS needs both a certificate and its private key (cert/certPath and key/keyPath)",
    );
  }
  const generated = generateSelfSignedCertificate({
    dnsNames: [...new Set(["localhost", hostname()])],
    ipAddresses: ["127.0.0.1"],
  });
  return { ...generated, selfSigned: true };
}
