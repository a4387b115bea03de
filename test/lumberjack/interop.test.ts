/**
 * Independent Lumberjack senders from the npm registry into our receiver:
 * lumberjack-protocol (v1 over TLS, window announced once, one data frame
 * at a time, a parser that takes only v1 acks) and lumberjack-client (v2,
 * one compressed frame per batch, made with pako).
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";

import { LumberjackReceiver } from "../../src/lumberjack/receiver.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { waitFor } from "../helpers.js";
import { CertFactory, type KeyPair } from "./certs.js";

const require = createRequire(import.meta.url);

/** The part of lumberjack-protocol's API the test uses. */
interface V1Client {
  writeDataFrame(event: Record<string, string>): void;
  close(): void;
  connected: boolean;
  _socket: { lastAck: number } | null;
}
const lumberjackProtocol = require("lumberjack-protocol") as {
  client(tls: object, options: object): V1Client;
};

/** The part of lumberjack-client's API the test uses. */
interface V2Client {
  log(event: Record<string, unknown>): void;
  connected?: boolean;
  connecting?: boolean;
  socket?: { destroy(): void };
}
const V2ClientClass = require("lumberjack-client") as new (
  config: object,
  tls?: boolean,
) => V2Client;

let certs: CertFactory;
let ca: KeyPair;
let server: KeyPair;
const receivers: LumberjackReceiver[] = [];

before(() => {
  certs = new CertFactory();
  ca = certs.ca("interop-ca");
  server = certs.leaf("interop-server", ca, {
    san: ["DNS:localhost", "IP:127.0.0.1"],
  });
});

after(() => {
  for (const r of receivers) r.destroy();
  certs.remove();
});

async function start(
  options: { tls?: boolean; keepaliveMs?: number; slowMs?: number } = {},
) {
  const batches: Record<string, unknown>[][] = [];
  const receiver = new LumberjackReceiver({
    port: 0,
    log: new Context({ logger: new MemoryLogger() }),
    tls: options.tls ? { cert: server.cert, key: server.key } : undefined,
    keepaliveMs: options.keepaliveMs,
    onBatch: async (events) => {
      if (options.slowMs) {
        await new Promise((resolve) => setTimeout(resolve, options.slowMs));
      }
      batches.push(events);
    },
  });
  receivers.push(receiver);
  const { port } = await receiver.listen();
  return { receiver, port, batches };
}

test("interop: lumberjack-protocol (v1, TLS) sends windows of 3 and reads our acks and keepalives", async () => {
  const r = await start({ tls: true, keepaliveMs: 20, slowMs: 100 });
  const client = lumberjackProtocol.client(
    { host: "127.0.0.1", port: r.port, ca: [ca.cert] },
    { windowSize: 3, reconnect: 60_000 },
  );
  try {
    const lines = ["one", "two", "thrée ✓", "four", "five", "six"];
    for (const line of lines) client.writeDataFrame({ line, clé: "välue" });

    await waitFor(() => r.batches.length === 2, "two batches", 10_000);
    await waitFor(
      () => client._socket?.lastAck === 6,
      "the client to see the ack of sequence 6",
    );
    assert.deepEqual(
      r.batches.flat(),
      lines.map((line) => ({ line, clé: "välue" })),
    );
    assert.deepEqual(
      r.batches.map((b) => b.length),
      [3, 3],
    );
    assert.equal(r.receiver.stats().batches, 2);
    assert.equal(client.connected, true, "our keepalives did not upset it");
  } finally {
    client.close();
  }
});

test("interop: lumberjack-client (v2, compressed) batches arrive whole and are acked", async () => {
  const r = await start();
  const client = new V2ClientClass({ host: "127.0.0.1", port: r.port });
  try {
    // Queued before the connection is up, so they go as one batch.
    client.log({ message: "hello", n: 1, nested: { ok: true } });
    client.log({ message: "world", n: 2 });
    client.log({ message: "!", n: 3 });
    await waitFor(() => r.batches.length === 1, "the batch", 10_000);
    client.log({ message: "later", n: 4 });
    await waitFor(() => r.batches.length === 2, "the second batch");

    assert.deepEqual(r.batches, [
      [
        { message: "hello", n: 1, nested: { ok: true } },
        { message: "world", n: 2 },
        { message: "!", n: 3 },
      ],
      [{ message: "later", n: 4 }],
    ]);
    await waitFor(() => r.receiver.stats().batches === 2, "both batches acked");
  } finally {
    // It reconnects on close unless it believes it is connecting.
    client.connecting = true;
    client.socket?.destroy();
  }
});
