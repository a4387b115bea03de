import assert from "node:assert/strict";
import { connect as tlsConnect } from "node:tls";
import { after, before, test } from "node:test";

import { LumberjackClient } from "../../src/lumberjack/client.js";
import { LumberjackReceiver } from "../../src/lumberjack/receiver.js";
import {
  countCertificates,
  type ClientTlsOptions,
  type ServerTlsOptions,
} from "../../src/lumberjack/tls.js";
import { readPemFile } from "../../src/lumberjack/tls-files.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { waitFor } from "../helpers.js";
import { CertFactory, type KeyPair } from "./certs.js";

const LOCAL_SAN = ["DNS:localhost", "IP:127.0.0.1"];

let certs: CertFactory;
let caA: KeyPair;
let caB: KeyPair;
let caOther: KeyPair;
let serverA: KeyPair;
let serverB: KeyPair;
let dnsOnly: KeyPair;
let ipOnly: KeyPair;
let expired: KeyPair;
let clientGood: KeyPair;
let clientOther: KeyPair;
let bundle: string;

const receivers: LumberjackReceiver[] = [];
const clients: LumberjackClient[] = [];

before(() => {
  certs = new CertFactory();
  caA = certs.ca("ca-a");
  caB = certs.ca("ca-b");
  caOther = certs.ca("ca-other");
  serverA = certs.leaf("server-a", caA, { san: LOCAL_SAN });
  serverB = certs.leaf("server-b", caB, { san: LOCAL_SAN });
  dnsOnly = certs.leaf("dns-only", caA, { san: ["DNS:lumberjack.test"] });
  ipOnly = certs.leaf("ip-only", caA, { san: ["IP:127.0.0.1"] });
  expired = certs.leaf("expired", caA, {
    san: LOCAL_SAN,
    startDate: "20200101000000Z",
    endDate: "20200102000000Z",
  });
  clientGood = certs.leaf("client-good", caA, { usage: "client" });
  clientOther = certs.leaf("client-other", caOther, { usage: "client" });
  bundle = caA.cert + caB.cert;
});

after(() => {
  for (const c of clients) c.destroy();
  for (const r of receivers) r.destroy();
  certs.remove();
});

async function receiver(
  server: KeyPair,
  options: Partial<ServerTlsOptions> = {},
): Promise<{ port: number; logger: MemoryLogger; events: unknown[] }> {
  const logger = new MemoryLogger();
  const events: unknown[] = [];
  const r = new LumberjackReceiver({
    port: 0,
    log: new Context({ logger }),
    tls: { cert: server.cert, key: server.key, ...options },
    onBatch: (batch) => {
      events.push(...batch);
      return Promise.resolve();
    },
  });
  receivers.push(r);
  const { port } = await r.listen();
  return { port, logger, events };
}

function send(port: number, tls: ClientTlsOptions): Promise<void> {
  const c = new LumberjackClient({
    host: "127.0.0.1",
    port,
    tls,
    connectTimeoutMs: 5000,
    ackTimeoutMs: 5000,
  });
  clients.push(c);
  return c.send([{ line: "over tls" }]).finally(() => c.destroy());
}

async function refused(
  port: number,
  tls: ClientTlsOptions,
  message: RegExp,
): Promise<void> {
  await assert.rejects(send(port, tls), (err: Error & { code?: string }) => {
    assert.equal(err.code, "unavailable");
    assert.match(err.message, message);
    return true;
  });
}

test("tls: a server certificate from the trusted CA passes, checked against its IP SAN", async () => {
  const r = await receiver(serverA);
  await send(r.port, { ca: caA.cert });
  await send(r.port, { ca: caA.cert, servername: "localhost" });
  assert.deepEqual(r.events, [{ line: "over tls" }, { line: "over tls" }]);
});

test("tls: the server name is set apart from the address", async () => {
  const r = await receiver(dnsOnly);
  await send(r.port, { ca: caA.cert, servername: "lumberjack.test" });
  await refused(
    r.port,
    { ca: caA.cert },
    /^Cannot connect to 127\.0\.0\.1:\d+: .*IP: 127\.0\.0\.1 is not in the cert's list/,
  );
});

test("tls: a certificate with only an IP SAN serves an address", async () => {
  const r = await receiver(ipOnly);
  await send(r.port, { ca: caA.cert });
  await send(r.port, { ca: caA.cert, servername: "127.0.0.1" });
  await refused(
    r.port,
    { ca: caA.cert, servername: "localhost" },
    /Hostname\/IP does not match certificate's altnames: Host: localhost\. is not cert's CN: ip-only$/,
  );
});

test("tls: a certificate from another CA is refused", async () => {
  const r = await receiver(serverA);
  await refused(
    r.port,
    { ca: caOther.cert },
    /^Cannot connect to 127\.0\.0\.1:\d+: unable to verify the first certificate$/,
  );
});

test("tls: a certificate for another name is refused", async () => {
  const r = await receiver(serverA);
  await refused(
    r.port,
    { ca: caA.cert, servername: "other.test" },
    /^Cannot connect to 127\.0\.0\.1:\d+: Hostname\/IP does not match certificate's altnames: Host: other\.test\. is not in the cert's altnames: DNS:localhost, IP Address:127\.0\.0\.1$/,
  );
});

test("tls: an expired certificate is refused", async () => {
  const r = await receiver(expired);
  await refused(
    r.port,
    { ca: caA.cert },
    /^Cannot connect to 127\.0\.0\.1:\d+: certificate has expired$/,
  );
});

test("tls: every certificate of a CA bundle is trusted, not just the first", async () => {
  assert.equal(countCertificates(bundle), 2);
  const path = certs.file("bundle.pem", bundle);
  const a = await receiver(serverA);
  const b = await receiver(serverB);
  await send(a.port, { ca: bundle });
  await send(b.port, { ca: bundle });
  await send(b.port, { ca: readPemFile(path, "ca") });
  await refused(
    b.port,
    { ca: caA.cert },
    /unable to verify the first certificate/,
  );
});

test("tls: clientAuth required refuses a client without a certificate or with a stranger's", async () => {
  const r = await receiver(serverA, { ca: caA.cert, clientAuth: "required" });
  await send(r.port, {
    ca: caA.cert,
    cert: clientGood.cert,
    key: clientGood.key,
  });
  await refused(r.port, { ca: caA.cert }, /certificate required|closed/);
  await refused(
    r.port,
    { ca: caA.cert, cert: clientOther.cert, key: clientOther.key },
    /unknown ca|closed/,
  );
  assert.deepEqual(r.events, [{ line: "over tls" }]);
  await waitFor(
    () => r.logger.records.filter((x) => x.at === "tls_error").length === 2,
    "two tls_error lines",
  );
});

test("tls: clientAuth optional takes no certificate, but not a bad one", async () => {
  const r = await receiver(serverA, { ca: caA.cert, clientAuth: "optional" });
  await send(r.port, { ca: caA.cert });
  await send(r.port, {
    ca: caA.cert,
    cert: clientGood.cert,
    key: clientGood.key,
  });
  await refused(
    r.port,
    { ca: caA.cert, cert: clientOther.cert, key: clientOther.key },
    /closed/,
  );
  assert.equal(r.events.length, 2);
  const errors = r.logger.records.filter((x) => x.at === "tls_error");
  assert.deepEqual(
    errors.map((x) => x.err),
    ["Client certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE"],
  );
});

test("tls: versions before 1.2 are refused", async () => {
  const r = await receiver(serverA);
  const err = await new Promise<Error>((resolve) => {
    const socket = tlsConnect({
      host: "127.0.0.1",
      port: r.port,
      ca: caA.cert,
      minVersion: "TLSv1",
      maxVersion: "TLSv1.1",
    });
    socket.on("error", resolve);
    socket.on("secureConnect", () => {
      socket.destroy();
      resolve(new Error("connected"));
    });
  });
  assert.notEqual(err.message, "connected");
});
