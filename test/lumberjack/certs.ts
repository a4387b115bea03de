/**
 * Test certificates made with the `openssl` command in a temp dir: CAs,
 * server and client certificates signed by them, with chosen SANs and
 * validity. EC P-256 keys keep generation quick.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { tempDir } from "../helpers.js";

export interface KeyPair {
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
}

export interface LeafOptions {
  /** subjectAltName entries, e.g. ["DNS:localhost", "IP:127.0.0.1"]. */
  san?: string[];
  /** "server" or "client" extended key usage; default server. */
  usage?: "server" | "client";
  /** Validity as openssl dates (YYYYMMDDHHMMSSZ); default now + 30 days. */
  startDate?: string;
  endDate?: string;
}

/** A scratch CA directory; `remove()` deletes every file made. */
export class CertFactory {
  readonly dir: string;
  readonly remove: () => void;
  #serial = 1;

  constructor() {
    const dir = tempDir("lorne-certs-");
    this.dir = dir.path;
    this.remove = dir.remove;
    writeFileSync(join(this.dir, "index.txt"), "");
  }

  /** A self-signed CA. */
  ca(name: string): KeyPair {
    const pair = this.#paths(name);
    openssl([
      "req",
      "-x509",
      ...newKey(pair.keyPath),
      "-out",
      pair.certPath,
      "-subj",
      `/CN=${name}`,
      "-days",
      "30",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    return this.#read(pair);
  }

  /** A certificate for `name` signed by `ca`. */
  leaf(name: string, ca: KeyPair, options: LeafOptions = {}): KeyPair {
    const pair = this.#paths(name);
    const csr = join(this.dir, `${name}.csr`);
    openssl([
      "req",
      ...newKey(pair.keyPath),
      "-out",
      csr,
      "-subj",
      `/CN=${name}`,
    ]);
    const ext = join(this.dir, `${name}.ext`);
    const usage = options.usage === "client" ? "clientAuth" : "serverAuth";
    const lines = [
      "[leaf]",
      "basicConstraints=CA:FALSE",
      `extendedKeyUsage=${usage}`,
    ];
    if (options.san && options.san.length > 0) {
      lines.push(`subjectAltName=${options.san.join(",")}`);
    }
    writeFileSync(ext, lines.join("\n") + "\n");
    const config = join(this.dir, "ca.cnf");
    writeFileSync(config, caConfig(this.dir));
    const serial = join(this.dir, "serial");
    writeFileSync(
      serial,
      (this.#serial++).toString(16).padStart(2, "0") + "\n",
    );
    openssl([
      "ca",
      "-batch",
      "-notext",
      "-config",
      config,
      "-cert",
      ca.certPath,
      "-keyfile",
      ca.keyPath,
      "-in",
      csr,
      "-out",
      pair.certPath,
      "-extfile",
      ext,
      "-extensions",
      "leaf",
      ...(options.startDate ? ["-startdate", options.startDate] : []),
      ...(options.endDate ? ["-enddate", options.endDate] : ["-days", "30"]),
    ]);
    return this.#read(pair);
  }

  /** Writes text to a file in the scratch dir; returns its path. */
  file(name: string, text: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, text);
    return path;
  }

  #paths(name: string): { certPath: string; keyPath: string } {
    return {
      certPath: join(this.dir, `${name}.crt`),
      keyPath: join(this.dir, `${name}.key`),
    };
  }

  #read(pair: { certPath: string; keyPath: string }): KeyPair {
    return {
      ...pair,
      cert: readFileSync(pair.certPath, "utf8"),
      key: readFileSync(pair.keyPath, "utf8"),
    };
  }
}

function newKey(keyPath: string): string[] {
  return [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    keyPath,
  ];
}

function caConfig(dir: string): string {
  return [
    "[ca]",
    "default_ca = scratch",
    "[scratch]",
    `database = ${join(dir, "index.txt")}`,
    `new_certs_dir = ${dir}`,
    `serial = ${join(dir, "serial")}`,
    "default_md = sha256",
    "policy = any",
    "unique_subject = no",
    "[any]",
    "commonName = supplied",
    "",
  ].join("\n");
}

function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}
