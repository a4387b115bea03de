/**
 * Reads and checks TLS files (CA bundle, certificate, private key) before
 * anything starts: `lorne ship` reads those its config names, `lorne
 * receive` those its flags name. A missing file, a file that is not PEM,
 * or a key that does not match its certificate stops the command at once
 * instead of failing every connection later. Errors name the config key
 * or flag and the file.
 */
import { createPublicKey, X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createSecureContext } from "node:tls";

import { describeFsError, errorMessage, ValidationError } from "../errors.js";
import { countCertificates } from "./tls.js";

/**
 * Largest TLS file read. A bundle of every public root CA is about
 * 250 KiB; a bigger file is a mistake (a log, a device), not PEM.
 */
export const MAX_PEM_BYTES = 4 * 1024 * 1024;

const BEGIN_CERTIFICATE = "-----BEGIN CERTIFICATE-----";
const END_CERTIFICATE = "-----END CERTIFICATE-----";
const PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/** Paths of the TLS files. */
export interface TlsPaths {
  ca?: string;
  certificate?: string;
  key?: string;
}

/** What errors call each file: config keys or flags. */
export interface TlsFileNames {
  ca: string;
  certificate: string;
  key: string;
}

/** The PEM text of the TLS files; certificate and key come together. */
export interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
}

/**
 * Reads and checks the files of `paths`: every certificate in them must
 * parse, and the key must be an unencrypted private key that belongs to
 * the certificate. The caller has checked that certificate and key are
 * both given or both absent. Errors call the files by `names`.
 */
export function readTlsFiles(
  paths: TlsPaths,
  names: TlsFileNames,
): TlsMaterial {
  const material: TlsMaterial = {};
  if (paths.ca !== undefined) {
    material.ca = readPemFile(paths.ca, names.ca);
    checkCertificates(material.ca, names.ca, paths.ca);
  }
  if (paths.certificate !== undefined && paths.key !== undefined) {
    const cert = readPemFile(paths.certificate, names.certificate);
    checkCertificates(cert, names.certificate, paths.certificate);
    const key = readPemFile(paths.key, names.key);
    checkKeyPair(cert, key, paths, names);
    material.cert = cert;
    material.key = key;
  }
  return material;
}

/** The text of a PEM file, or a ValidationError naming `field`. */
export function readPemFile(path: string, field: string): string {
  const fail = (why: string, cause?: unknown): ValidationError =>
    new ValidationError(`Cannot read ${field} "${path}": ${why}`, field, {
      cause,
    });
  try {
    // A FIFO or a device would block or never end: only regular files.
    const stats = statSync(path);
    if (stats.isDirectory()) throw fail("is a directory");
    if (!stats.isFile()) throw fail("not a regular file");
    if (stats.size > MAX_PEM_BYTES) {
      throw fail(`larger than ${MAX_PEM_BYTES} bytes, too big for PEM`);
    }
    return readFileSync(path, "utf8");
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw fail(describeFsError(err), err);
  }
}

// Node's `ca` option skips a block it cannot parse without a word, and a
// bad client certificate would only fail at the first handshake.
function checkCertificates(pem: string, field: string, path: string): void {
  const count = countCertificates(pem);
  if (count === 0) {
    throw new ValidationError(
      `Invalid ${field} "${path}": no PEM certificate found`,
      field,
    );
  }
  const blocks = pem.split(BEGIN_CERTIFICATE).slice(1);
  blocks.forEach((block, index) => {
    const end = block.indexOf(END_CERTIFICATE);
    try {
      if (end === -1) throw new Error(`no "${END_CERTIFICATE}" line`);
      new X509Certificate(
        BEGIN_CERTIFICATE + block.slice(0, end) + END_CERTIFICATE,
      );
    } catch (err) {
      throw new ValidationError(
        `Invalid ${field} "${path}": certificate ${index + 1} of ${count} ` +
          "cannot be parsed",
        field,
        { cause: err },
      );
    }
  });
}

function checkKeyPair(
  cert: string,
  key: string,
  paths: TlsPaths,
  names: TlsFileNames,
): void {
  const fail = (why: string, cause?: unknown): ValidationError =>
    new ValidationError(
      `Invalid ${names.key} "${paths.key}": ${why}`,
      names.key,
      {
        cause,
      },
    );
  const mismatch = `it does not match ${names.certificate} "${paths.certificate}"`;
  if (!PRIVATE_KEY.test(key)) throw fail("no PEM private key found");
  // There is no passphrase option: ask for a key the shipper can use
  // unattended rather than fail with OpenSSL's "bad decrypt".
  if (key.includes("ENCRYPTED")) {
    throw fail("the private key is encrypted; give an unencrypted key");
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    if (codeOf(err) === "ERR_OSSL_X509_KEY_VALUES_MISMATCH") {
      throw fail(mismatch, err);
    }
    const reason = reasonOf(err);
    throw fail(`the private key cannot be loaded (${reason})`, err);
  }
  // OpenSSL keeps a key of another type (EC for an RSA certificate) in a
  // slot of its own without complaint, then sends no certificate at all.
  const certKey = new X509Certificate(cert).publicKey.export({
    type: "spki",
    format: "der",
  });
  const ownKey = createPublicKey(key).export({ type: "spki", format: "der" });
  if (!certKey.equals(ownKey)) {
    throw fail(mismatch);
  }
}

function codeOf(err: unknown): unknown {
  return typeof err === "object" && err !== null && "code" in err
    ? err.code
    : undefined;
}

/** OpenSSL's short reason ("bad decrypt") when node attached one. */
function reasonOf(err: unknown): string {
  if (typeof err === "object" && err !== null && "reason" in err) {
    if (typeof err.reason === "string") return err.reason;
  }
  return errorMessage(err);
}
