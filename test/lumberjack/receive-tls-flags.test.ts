/**
 * `lorne receive`'s TLS flags: each file that is missing, not PEM, or a
 * key that does not match its certificate stops it before it listens,
 * with exit 2 and a message naming the flag and the file (the checks of
 * `lorne ship`'s config). The built binary; build first.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { runLorne } from "../helpers.js";
import { CertFactory, type KeyPair } from "./certs.js";

let certs: CertFactory;
let dir: string;
let ca: KeyPair;
let server: KeyPair;
let stranger: KeyPair;

before(() => {
  certs = new CertFactory();
  dir = certs.dir;
  ca = certs.ca("ca");
  server = certs.leaf("server", ca, { san: ["IP:127.0.0.1"] });
  // Signed by the same CA, but its key is not the server's.
  stranger = certs.leaf("stranger", ca);
});

after(() => certs.remove());

const BROKEN_BLOCK =
  "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";

/** The server's good certificate and key, with `--tls-ca path`. */
function withCa(path: string): string[] {
  return [
    "--tls-cert",
    server.certPath,
    "--tls-key",
    server.keyPath,
    "--tls-ca",
    path,
  ];
}

/** [case, flags (given the certs dir), message (given it)]. */
const BAD: readonly [string, () => string[], () => string][] = [
  [
    "a key that belongs to another certificate",
    () => ["--tls-cert", server.certPath, "--tls-key", stranger.keyPath],
    () =>
      `Invalid --tls-key "${stranger.keyPath}": it does not match ` +
      `--tls-cert "${server.certPath}"`,
  ],
  [
    "a missing certificate file",
    () => ["--tls-cert", join(dir, "nope.crt"), "--tls-key", server.keyPath],
    () => `Cannot read --tls-cert "${dir}/nope.crt": no such file`,
  ],
  [
    "a missing key file",
    () => ["--tls-cert", server.certPath, "--tls-key", join(dir, "nope.key")],
    () => `Cannot read --tls-key "${dir}/nope.key": no such file`,
  ],
  [
    "a key that is a directory",
    () => ["--tls-cert", server.certPath, "--tls-key", dir],
    () => `Cannot read --tls-key "${dir}": is a directory`,
  ],
  [
    "a certificate file without a certificate",
    () => [
      "--tls-cert",
      certs.file("text.crt", "hello\n"),
      "--tls-key",
      server.keyPath,
    ],
    () => `Invalid --tls-cert "${dir}/text.crt": no PEM certificate found`,
  ],
  [
    "a key file without a key",
    () => ["--tls-cert", server.certPath, "--tls-key", server.certPath],
    () => `Invalid --tls-key "${server.certPath}": no PEM private key found`,
  ],
  [
    "a missing CA file",
    () => [...withCa(join(dir, "nope-ca.crt")), "--client-auth", "required"],
    () => `Cannot read --tls-ca "${dir}/nope-ca.crt": no such file`,
  ],
  [
    "a CA bundle with a broken second certificate",
    () => withCa(certs.file("half.crt", ca.cert + BROKEN_BLOCK)),
    () =>
      `Invalid --tls-ca "${dir}/half.crt": certificate 2 of 2 cannot be ` +
      "parsed",
  ],
];

for (const [name, flags, message] of BAD) {
  test(`receive: ${name} is refused before listening (exit 2, names the flag and file)`, async () => {
    const result = await runLorne([
      "receive",
      "--listen",
      "127.0.0.1:0",
      ...flags(),
    ]);
    assert.deepEqual(result, {
      code: 2,
      stdout: "",
      stderr: `lorne: ${message()}\n`,
    });
  });
}
