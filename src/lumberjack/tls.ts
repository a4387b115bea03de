/**
 * TLS settings shared by the Lumberjack client and receiver: what each
 * side accepts, checked once, and turned into node:tls options. Both sides
 * speak TLS 1.2 or later. A CA bundle is trusted whole (every certificate
 * in the PEM text), unlike the first-certificate-only reading of older
 * shippers.
 */
import { isIP } from "node:net";
import {
  checkServerIdentity,
  type ConnectionOptions,
  type TlsOptions,
} from "node:tls";

import { ValidationError } from "../errors.js";

/** The oldest TLS version either side accepts. */
export const MIN_TLS_VERSION = "TLSv1.2";

/** PEM text: a string, a Buffer, or several of them. */
export type Pem = string | Buffer | (string | Buffer)[];

/** How a client checks the server and proves itself. */
export interface ClientTlsOptions {
  /**
   * Certificates to trust (every block of a bundle counts); default the
   * system's roots.
   */
  ca?: Pem;
  /** Client certificate chain, sent when the server asks; needs `key`. */
  cert?: Pem;
  /** Private key of `cert`. */
  key?: Pem;
  /**
   * Name the server's certificate must carry; default the host connected
   * to. An IP address is checked against the certificate's IP SANs and is
   * not sent as SNI (RFC 6066 allows only host names there).
   */
  servername?: string;
  /** Verify the server's certificate; default true. */
  rejectUnauthorized?: boolean;
}

/** Whether the receiver asks for client certificates and requires them. */
export type ClientAuth = "none" | "optional" | "required";

/** The receiver's certificate and its policy for client certificates. */
export interface ServerTlsOptions {
  /** Server certificate chain (PEM). */
  cert: Pem;
  /** Private key of `cert` (PEM). */
  key: Pem;
  /** CAs that sign client certificates; needed unless clientAuth is none. */
  ca?: Pem;
  /**
   * none: no client certificate is asked for (default). optional: asked
   * for; a connection without one is accepted, one with a certificate the
   * CA did not sign is refused. required: a connection without a valid one
   * is refused.
   */
  clientAuth?: ClientAuth;
}

const CLIENT_AUTH = ["none", "optional", "required"] as const;

/** node:tls options for a client connecting to `host`:`port`. */
export function clientTlsOptions(
  host: string,
  port: number,
  tls: ClientTlsOptions,
): ConnectionOptions {
  if (tls.cert !== undefined && tls.key === undefined) {
    throw new ValidationError(
      "Invalid tls options: cert needs a key",
      "tls.key",
    );
  }
  if (tls.key !== undefined && tls.cert === undefined) {
    throw new ValidationError(
      "Invalid tls options: key needs a cert",
      "tls.cert",
    );
  }
  if (tls.ca !== undefined) checkCertificates(tls.ca, "tls.ca");
  const name = tls.servername ?? host;
  if (name === "") {
    throw new ValidationError(
      "Invalid tls.servername: must not be empty",
      "tls.servername",
    );
  }
  return {
    host,
    port,
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    minVersion: MIN_TLS_VERSION,
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
    // SNI carries host names only; an address is still verified below.
    servername: isIP(name) === 0 ? name : undefined,
    checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert),
  };
}

/** node:tls server options, validated. */
export function serverTlsOptions(tls: ServerTlsOptions): TlsOptions {
  const clientAuth = tls.clientAuth ?? "none";
  if (!CLIENT_AUTH.includes(clientAuth)) {
    throw new ValidationError(
      `Invalid tls.clientAuth "${String(clientAuth)}": expected none, ` +
        "optional or required",
      "tls.clientAuth",
    );
  }
  if (tls.cert === undefined || tls.key === undefined) {
    throw new ValidationError(
      "Invalid tls options: the receiver needs both cert and key",
      tls.cert === undefined ? "tls.cert" : "tls.key",
    );
  }
  if (clientAuth !== "none" && tls.ca === undefined) {
    throw new ValidationError(
      `Invalid tls options: clientAuth ${clientAuth} needs a ca to check ` +
        "client certificates against",
      "tls.ca",
    );
  }
  if (tls.ca !== undefined) checkCertificates(tls.ca, "tls.ca");
  return {
    cert: tls.cert,
    key: tls.key,
    ca: tls.ca,
    minVersion: MIN_TLS_VERSION,
    requestCert: clientAuth !== "none",
    // "optional" lets a handshake without a certificate through; the
    // receiver then refuses a certificate that failed verification.
    rejectUnauthorized: clientAuth === "required",
  };
}

/** Number of certificates in PEM text. */
export function countCertificates(pem: Pem): number {
  const parts = Array.isArray(pem) ? pem : [pem];
  let count = 0;
  for (const part of parts) {
    const text = typeof part === "string" ? part : part.toString("latin1");
    count += text.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  }
  return count;
}

// A CA option without one certificate would trust nothing, and node would
// only say so at the first handshake.
function checkCertificates(pem: Pem, field: string): void {
  if (countCertificates(pem) === 0) {
    throw new ValidationError(
      `Invalid ${field}: no PEM certificate found`,
      field,
    );
  }
}
