/**
 * The TLS files of a `lorne ship` config: each way a file can be missing,
 * unreadable, not PEM or not matching gives an exact message naming the
 * key and the file; and the options loaded from good files open a real
 * TLS connection with a client certificate to a local receiver.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { Context, MemoryLogger } from "../../src/log/index.js";
import { LumberjackClient } from "../../src/lumberjack/client.js";
import { LumberjackReceiver } from "../../src/lumberjack/receiver.js";
import { loadShipConfig } from "../../src/ship/config.js";
import { CertFactory, type KeyPair } from "../lumberjack/certs.js";
import { config, net, parseError, type Obj } from "./config-helpers.js";

let certs: CertFactory;
let dir: string;
let ca: KeyPair;
let otherCa: KeyPair;
let client: KeyPair;
let server: KeyPair;

before(() => {
  certs = new CertFactory();
  dir = certs.dir;
  ca = certs.ca("ca");
  otherCa = certs.ca("other-ca");
  client = certs.leaf("client", ca, { usage: "client" });
  // Its key belongs to another certificate of the same CA.
  certs.leaf("stranger", ca, { usage: "client" });
  server = certs.leaf("server", ca, { san: ["DNS:localhost"] });
});

after(() => certs.remove());

/** A config whose TLS keys are `files`, relative to the certs dir. */
function withFiles(files: Obj): Obj {
  return config({ network: net(files) });
}

// An RSA key next to the EC certificates: OpenSSL itself does not refuse
// the pair, it only sends no certificate.
function rsaKey(): string {
  const path = join(dir, "rsa.key");
  execFileSync("openssl", ["genrsa", "-out", path, "2048"], {
    stdio: "ignore",
  });
  return path;
}

function encryptedKey(): string {
  const path = join(dir, "encrypted.key");
  execFileSync("openssl", [
    "pkcs8",
    "-topk8",
    "-in",
    client.keyPath,
    "-out",
    path,
    "-passout",
    "pass:secret",
  ]);
  return path;
}

const BROKEN_BLOCK =
  "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";

/** [case, TLS keys (given the certs dir), message (given it), field]. */
const BAD_TLS: readonly [string, () => Obj, (d: string) => string, string][] = [
  [
    "a missing ca file",
    () => withFiles({ ca: "nope.crt" }),
    (d) => `Cannot read network.ca "${d}/nope.crt": no such file`,
    "network.ca",
  ],
  [
    "a ca under a file",
    () => withFiles({ ca: "ca.crt/x" }),
    (d) =>
      `Cannot read network.ca "${d}/ca.crt/x": a part of the path is not ` +
      "a directory",
    "network.ca",
  ],
  [
    "a ca that is a directory",
    () => withFiles({ ca: "." }),
    (d) => `Cannot read network.ca "${d}": is a directory`,
    "network.ca",
  ],
  [
    "a ca that is a device",
    () => withFiles({ ca: "/dev/null" }),
    () => 'Cannot read network.ca "/dev/null": not a regular file',
    "network.ca",
  ],
  [
    "a ca too big for PEM",
    () => withFiles({ ca: certs.file("big.crt", "x".repeat(4_194_305)) }),
    (d) =>
      `Cannot read network.ca "${d}/big.crt": larger than 4194304 bytes, ` +
      "too big for PEM",
    "network.ca",
  ],
  [
    "a ca without a certificate",
    () => withFiles({ ca: certs.file("text.crt", "hello\n") }),
    (d) => `Invalid network.ca "${d}/text.crt": no PEM certificate found`,
    "network.ca",
  ],
  [
    "a ca bundle with a broken second certificate",
    () => withFiles({ ca: certs.file("half.crt", ca.cert + BROKEN_BLOCK) }),
    (d) =>
      `Invalid network.ca "${d}/half.crt": certificate 2 of 2 cannot be ` +
      "parsed",
    "network.ca",
  ],
  [
    "a ca certificate without its END line",
    () =>
      withFiles({
        ca: certs.file("cut.crt", ca.cert.slice(0, ca.cert.length - 30)),
      }),
    (d) =>
      `Invalid network.ca "${d}/cut.crt": certificate 1 of 1 cannot be ` +
      "parsed",
    "network.ca",
  ],
  [
    "a missing certificate file (read before the key)",
    () => withFiles({ certificate: "nope.crt", key: "nope.key" }),
    (d) => `Cannot read network.certificate "${d}/nope.crt": no such file`,
    "network.certificate",
  ],
  [
    "a key given as the certificate",
    () => withFiles({ certificate: "client.key", key: "client.key" }),
    (d) =>
      `Invalid network.certificate "${d}/client.key": no PEM certificate ` +
      "found",
    "network.certificate",
  ],
  [
    "a missing key file",
    () => withFiles({ certificate: "client.crt", key: "nope.key" }),
    (d) => `Cannot read network.key "${d}/nope.key": no such file`,
    "network.key",
  ],
  [
    "a certificate given as the key",
    () => withFiles({ certificate: "client.crt", key: "client.crt" }),
    (d) => `Invalid network.key "${d}/client.crt": no PEM private key found`,
    "network.key",
  ],
  [
    "a key of another certificate",
    () => withFiles({ certificate: "client.crt", key: "stranger.key" }),
    (d) =>
      `Invalid network.key "${d}/stranger.key": it does not match ` +
      `network.certificate "${d}/client.crt"`,
    "network.key",
  ],
  [
    "a key of another type (RSA for an EC certificate)",
    () => withFiles({ certificate: "client.crt", key: rsaKey() }),
    (d) =>
      `Invalid network.key "${d}/rsa.key": it does not match ` +
      `network.certificate "${d}/client.crt"`,
    "network.key",
  ],
  [
    "an encrypted key",
    () => withFiles({ certificate: "client.crt", key: encryptedKey() }),
    (d) =>
      `Invalid network.key "${d}/encrypted.key": the private key is ` +
      "encrypted; give an unencrypted key",
    "network.key",
  ],
  [
    "a key that is not one",
    () =>
      withFiles({
        certificate: "client.crt",
        key: certs.file(
          "junk.key",
          "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ),
      }),
    (d) =>
      `Invalid network.key "${d}/junk.key": the private key cannot be ` +
      "loaded (unsupported)",
    "network.key",
  ],
];

for (const [name, value, message, field] of BAD_TLS) {
  test(`config: refuses ${name}`, () => {
    const err = parseError(value(), dir);
    assert.equal(err.message, message(dir));
    assert.equal(err.field, field);
  });
}

test("config: a TLS file's error keeps the system error as its cause", () => {
  const err = parseError(withFiles({ ca: "nope.crt" }), dir);
  assert.equal((err.cause as NodeJS.ErrnoException).code, "ENOENT");
});

test("config: the loaded TLS options connect to a receiver that wants a client certificate", async (t) => {
  const logger = new MemoryLogger();
  const events: unknown[] = [];
  const receiver = new LumberjackReceiver({
    port: 0,
    log: new Context({ logger }),
    tls: {
      cert: server.cert,
      key: server.key,
      ca: ca.cert,
      clientAuth: "required",
    },
    onBatch: (batch) => {
      events.push(...batch);
      return Promise.resolve();
    },
  });
  t.after(() => receiver.destroy());
  const { port } = await receiver.listen();
  // The server's CA is second in the bundle: every certificate counts.
  certs.file("bundle.crt", otherCa.cert + ca.cert);
  const path = certs.file(
    "tls.json",
    JSON.stringify(
      config({
        network: net({
          servers: [{ addr: `127.0.0.1:${port}`, name: "localhost" }],
          certificate: "client.crt",
          key: "client.key",
          ca: "bundle.crt",
          version: 2,
        }),
      }),
    ),
  );
  const loaded = await loadShipConfig(path);
  const target = loaded.network.servers[0];
  assert.ok(target);
  const sender = new LumberjackClient({
    host: target.host,
    port: target.port,
    tls: target.tls,
    version: loaded.network.version,
    compressionLevel: loaded.network.compressionLevel,
    connectTimeoutMs: loaded.network.timeoutMs,
    ackTimeoutMs: loaded.network.timeoutMs,
    writeTimeoutMs: loaded.network.timeoutMs,
  });
  t.after(() => sender.destroy());
  await sender.send([{ line: "from the config" }]);
  assert.deepEqual(events, [{ line: "from the config" }]);
});
