import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { LumberjackClient } from "../../src/lumberjack/client.js";
import {
  encodeCompressed,
  encodeFrame,
  type Frame,
  type Version,
} from "../../src/lumberjack/index.js";
import {
  LumberjackReceiver,
  type BatchHandler,
  type BatchInfo,
  type ReceiverSettings,
} from "../../src/lumberjack/receiver.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { waitFor } from "../helpers.js";
import { exchange } from "./peer.js";

interface Harness {
  receiver: LumberjackReceiver;
  port: number;
  logger: MemoryLogger;
  batches: { events: Record<string, unknown>[]; info: BatchInfo }[];
  /** Records logged with this `at`. */
  logged(at: string): Record<string, unknown>[];
}

const receivers: LumberjackReceiver[] = [];
const clients: LumberjackClient[] = [];

after(() => {
  for (const c of clients) c.destroy();
  for (const r of receivers) r.destroy();
});

async function start(
  options: Partial<ReceiverSettings> & { onBatch?: BatchHandler } = {},
): Promise<Harness> {
  const logger = new MemoryLogger();
  const batches: Harness["batches"] = [];
  const receiver = new LumberjackReceiver({
    port: 0,
    log: new Context({ logger }),
    onBatch: (events, info) => {
      batches.push({ events, info });
      return Promise.resolve();
    },
    ...options,
  });
  receivers.push(receiver);
  const { port } = await receiver.listen();
  return {
    receiver,
    port,
    logger,
    batches,
    logged: (at) => logger.records.filter((r) => r.at === at),
  };
}

function client(
  port: number,
  version: Version,
  compressionLevel = 6,
): LumberjackClient {
  const c = new LumberjackClient({
    host: "127.0.0.1",
    port,
    version,
    compressionLevel,
  });
  clients.push(c);
  return c;
}

const frame = (f: Frame) => encodeFrame(f);
const window = (version: Version, size: number) =>
  frame({ type: "window", version, size });
const json = (seq: number, event: unknown) =>
  frame({
    type: "json",
    version: 2,
    seq,
    payload: Buffer.from(JSON.stringify(event)),
  });
const data = (seq: number, pairs: Record<string, string>) =>
  frame({
    type: "data",
    version: 1,
    seq,
    pairs: Object.entries(pairs).map(([k, v]) => [
      Buffer.from(k),
      Buffer.from(v),
    ]),
  });
const ack = (version: Version, seq: number): Frame => ({
  type: "ack",
  version,
  seq,
});

test("receiver: v1 and v2 batches, compressed and not, reach onBatch and are acked", async () => {
  const h = await start();
  const cases: [Version, number][] = [
    [1, 0],
    [1, 6],
    [2, 0],
    [2, 1],
  ];
  for (const [version, level] of cases) {
    const c = client(h.port, version, level);
    await c.send([{ line: "a", n: 1 }, { line: "b" }]);
    await c.send([{ line: "c" }]);
    await c.close();
  }
  const expected = (version: Version): unknown[][] =>
    version === 1
      ? [[{ line: "a", n: "1" }, { line: "b" }], [{ line: "c" }]]
      : [[{ line: "a", n: 1 }, { line: "b" }], [{ line: "c" }]];
  assert.deepEqual(
    h.batches.map((b) => b.events),
    cases.flatMap(([version]) => expected(version)),
  );
  assert.deepEqual(
    h.batches.map((b) => [b.info.version, b.info.seq]),
    [
      [1, 2],
      [1, 3],
      [1, 2],
      [1, 3],
      [2, 2],
      [2, 1],
      [2, 2],
      [2, 1],
    ],
  );
  await waitFor(() => h.receiver.stats().connections === 0, "closes");
  const stats = h.receiver.stats();
  assert.deepEqual(
    { ...stats, bytes: 0 },
    {
      connections: 0,
      events: 12,
      batches: 8,
      bytes: 0,
    },
  );
  assert.ok(stats.bytes > 100);
});

test("receiver: acks only after onBatch resolves, with the batch's last seq and version", async () => {
  let release = () => {};
  const h = await start({
    keepaliveMs: 60_000,
    onBatch: () => new Promise<void>((resolve) => (release = resolve)),
  });
  for (const version of [1, 2] as const) {
    const event =
      version === 1 ? data(7, { line: "x" }) : json(7, { line: "x" });
    const socket = connect({ host: "127.0.0.1", port: h.port });
    const received: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => received.push(chunk));
    socket.write(Buffer.concat([window(version, 1), event]));
    await sleep(150);
    assert.equal(Buffer.concat(received).length, 0, "no ack before onBatch");
    release();
    await waitFor(() => Buffer.concat(received).length === 6, "the ack");
    assert.deepEqual(Buffer.concat(received), frame(ack(version, 7)));
    socket.destroy();
  }
});

test("receiver: sends seq-0 keepalives of the client's version while onBatch is slow", async () => {
  const h = await start({
    keepaliveMs: 40,
    onBatch: () => sleep(300),
  });
  for (const version of [1, 2] as const) {
    const event =
      version === 1 ? data(1, { line: "x" }) : json(1, { line: "x" });
    const result = await exchange(h.port, [window(version, 1), event]);
    const keepalives = result.acks.slice(0, -1);
    assert.ok(keepalives.length >= 4, `${keepalives.length} keepalives`);
    for (const k of keepalives) assert.deepEqual(k, ack(version, 0));
    assert.deepEqual(result.acks.at(-1), ack(version, 1));
    assert.equal(result.closed, true);
  }
});

test("receiver: a v1 window announced once holds for later batches", async () => {
  const h = await start();
  const result = await exchange(h.port, [
    window(1, 2),
    ...[1, 2, 3, 4, 5].map((seq) => data(seq, { n: String(seq) })),
  ]);
  assert.deepEqual(result.acks, [ack(1, 2), ack(1, 4)]);
  assert.deepEqual(
    h.batches.map((b) => b.events),
    [
      [{ n: "1" }, { n: "2" }],
      [{ n: "3" }, { n: "4" }],
    ],
  );
  assert.equal(h.logged("close")[0]?.unacked, 1);
});

test("receiver: a batch only partly read is never handed on or acked", async () => {
  const h = await start();
  const result = await exchange(h.port, [
    window(2, 3),
    encodeCompressed(
      2,
      Buffer.concat([json(1, { a: 1 }), json(2, { a: 2 })]),
      6,
    ),
  ]);
  assert.deepEqual(result.acks, []);
  assert.equal(h.batches.length, 0);
  assert.equal(h.receiver.stats().events, 0);
});

test("receiver: each broken rule closes that connection, logged as protocol_error, without an ack", async () => {
  const h = await start({ maxWindow: 10 });
  const cases: [string, Buffer[], string | RegExp][] = [
    ["not lumberjack", [Buffer.from("GET / HTTP/1.1\r\n\r\n")], /./],
    [
      "an ack from a client",
      [frame(ack(2, 1))],
      "Unexpected ack frame from a client: expected a window or data frame",
    ],
    [
      "data before a window",
      [json(1, { a: 1 })],
      "Unexpected data frame (sequence 1) before any window frame",
    ],
    [
      "a window of 0",
      [window(2, 0)],
      "Invalid window frame: a window of 0 events",
    ],
    ["a window over maxWindow", [window(2, 11)], /11/],
    [
      "a JSON event that is not an object",
      [window(2, 1), json(1, [1, 2])],
      "Invalid JSON event at sequence 1: expected an object",
    ],
    [
      "bytes that are not JSON",
      [
        window(2, 1),
        frame({ type: "json", version: 2, seq: 1, payload: Buffer.from("{") }),
      ],
      /^Invalid JSON event at sequence 1: /,
    ],
    [
      "versions mixed",
      [window(2, 2), json(1, { a: 1 }), data(2, { a: "2" })],
      "Unexpected version 1 data frame on a version 2 connection",
    ],
    [
      "a window in the middle of a batch",
      [window(2, 3), json(1, { a: 1 }), window(2, 1), json(2, { a: 2 })],
      "Unexpected window frame: 1 of the 3 events of the batch are still unread",
    ],
    [
      "sequence 0",
      [window(1, 1), data(0, { a: "1" })],
      "Invalid data frame: sequence 0 is reserved",
    ],
    [
      "a sequence going backwards",
      [window(2, 2), json(5, { a: 1 }), json(5, { a: 2 })],
      "Invalid data frame: sequence 5 does not follow 5",
    ],
  ];
  for (const [name, chunks, message] of cases) {
    h.logger.clear();
    const result = await exchange(h.port, chunks, { end: false });
    assert.equal(result.closed, true, name);
    assert.deepEqual(result.acks, [], name);
    const errors = h.logged("protocol_error");
    assert.equal(errors.length, 1, name);
    const err = String(errors[0]?.err);
    if (typeof message === "string") assert.equal(err, message, name);
    else assert.match(err, message, name);
    assert.equal(h.logged("close")[0]?.reason, "protocol_error", name);
  }
  assert.equal(h.batches.length, 0);
});

test("receiver: a batch whose events pass maxBatchBytes closes the connection, also when small compressed frames carry them", async () => {
  const h = await start({ maxBatchBytes: 1000 });
  const big = (seq: number) => json(seq, { m: "x".repeat(590) }); // 600 bytes
  // Under the limit: handed on and acked.
  const fits = await exchange(h.port, [window(2, 1), big(1)]);
  assert.deepEqual(fits.acks, [ack(2, 1)]);
  for (const chunks of [
    [window(2, 3), big(1), big(2), big(3)],
    [window(2, 3), encodeCompressed(2, Buffer.concat([big(1), big(2)]), 9)],
  ]) {
    h.logger.clear();
    const result = await exchange(h.port, chunks, { end: false });
    assert.equal(result.closed, true);
    assert.deepEqual(result.acks, []);
    assert.equal(
      String(h.logged("protocol_error")[0]?.err),
      "Invalid batch: its events hold more than 1000 bytes (2 of a window of 3)",
    );
  }
  assert.equal(h.batches.length, 1);
});

test("receiver: a bad client is cut off while a good one keeps being served", async () => {
  const h = await start();
  const good = client(h.port, 2);
  await good.send([{ n: 1 }]);
  const bad = await exchange(
    h.port,
    [window(2, 2), json(1, { n: 2 }), Buffer.from("2Xjunkjunk")],
    { end: false },
  );
  assert.equal(bad.closed, true);
  await good.send([{ n: 3 }]);
  assert.deepEqual(
    h.batches.map((b) => b.events),
    [[{ n: 1 }], [{ n: 3 }]],
  );
  assert.equal(good.connected, true);
});

test("receiver: a failing onBatch closes the connection without an ack", async () => {
  const h = await start({
    onBatch: () => Promise.reject(new Error("Disk full")),
  });
  const result = await exchange(h.port, [window(2, 1), json(1, { a: 1 })], {
    end: false,
  });
  assert.equal(result.closed, true);
  assert.deepEqual(result.acks, []);
  assert.deepEqual(
    h.logged("batch_failed").map((r) => r.err),
    ["Disk full"],
  );
  assert.equal(h.receiver.stats().batches, 0);
});

test("receiver: connections over maxConnections are refused until one closes", async () => {
  const h = await start({ maxConnections: 2 });
  const open = async () => {
    const socket = connect({ host: "127.0.0.1", port: h.port });
    socket.on("error", () => {});
    let closed = false;
    socket.on("close", () => (closed = true));
    await new Promise((resolve) => socket.once("connect", resolve));
    return { socket, isClosed: () => closed };
  };
  const first = await open();
  const second = await open();
  await waitFor(() => h.receiver.stats().connections === 2, "two accepted");
  const third = await open();
  await waitFor(third.isClosed, "the third to be refused");
  assert.equal(h.logged("connection_limit").length, 1);
  assert.equal(h.logged("connection_limit")[0]?.max_connections, 2);
  assert.equal(first.isClosed() || second.isClosed(), false);

  first.socket.destroy();
  await waitFor(() => h.receiver.stats().connections === 1, "one left");
  const c = client(h.port, 2);
  await c.send([{ ok: true }]);
  second.socket.destroy();
});

test("receiver: the idle timeout cuts off silent and trickling clients", async () => {
  const h = await start({ idleTimeoutMs: 200 });
  const begun = Date.now();
  const silent = await exchange(h.port, [], { end: false, timeoutMs: 3000 });
  assert.equal(silent.closed, true);
  assert.ok(Date.now() - begun >= 190);

  // A byte every 50 ms never completes a frame: still idle.
  const bytes = Buffer.concat([window(2, 1), json(1, { line: "slow" })]);
  const socket = connect({ host: "127.0.0.1", port: h.port });
  socket.on("error", () => {});
  let closed = false;
  socket.on("close", () => (closed = true));
  for (let i = 0; i < bytes.length && !closed && i < 40; i++) {
    socket.write(bytes.subarray(i, i + 1));
    await sleep(50);
  }
  await waitFor(() => closed, "the trickler to be cut off");
  const idle = h.logged("idle_timeout");
  assert.equal(idle.length, 2);
  assert.equal(idle[0]?.idle_timeout_ms, 200);
  assert.equal(h.batches.length, 0);
});

test("receiver: a client busy in onBatch longer than the idle timeout is not cut off", async () => {
  const h = await start({
    idleTimeoutMs: 100,
    keepaliveMs: 30,
    onBatch: () => sleep(400),
  });
  const c = client(h.port, 2);
  await c.send([{ a: 1 }]);
  assert.equal(h.logged("idle_timeout").length, 0);
});

test("receiver: close acks the batch in onBatch, then ends every connection", async () => {
  let release = () => {};
  const h = await start({
    onBatch: () => new Promise<void>((resolve) => (release = resolve)),
  });
  const busy = client(h.port, 2);
  const idle = client(h.port, 1);
  await idle.connect();
  const sending = busy.send([{ a: 1 }]);
  await waitFor(() => h.receiver.stats().connections === 2, "both");
  await sleep(50);
  let closed = false;
  const closing = h.receiver.close().then(() => (closed = true));
  await sleep(100);
  assert.equal(closed, false, "close waits for onBatch");
  release();
  await sending;
  await closing;
  assert.deepEqual(h.receiver.stats().connections, 0);
  assert.deepEqual(
    h.logged("close").map((r) => r.reason),
    ["receiver_closed", "receiver_closed"],
  );
  await h.receiver.close();
});

test("receiver: destroy drops connections without acking", async () => {
  const h = await start({ onBatch: () => new Promise<void>(() => {}) });
  const c = new LumberjackClient({
    host: "127.0.0.1",
    port: h.port,
    ackTimeoutMs: 5000,
  });
  clients.push(c);
  const sending = c.send([{ a: 1 }]);
  await waitFor(() => h.receiver.stats().connections === 1, "connected");
  await sleep(50);
  h.receiver.destroy();
  await assert.rejects(sending, { code: "unavailable" });
});

test("receiver: options are checked at construction, naming the field", () => {
  const log = new Context({ logger: new MemoryLogger() });
  const onBatch = async () => {};
  const cases: [Partial<ReceiverSettings>, string, string][] = [
    [
      { port: 70000 },
      "port",
      "Invalid port 70000: expected a whole number from 0 to 65535",
    ],
    [
      { keepaliveMs: 0 },
      "keepaliveMs",
      "Invalid keepaliveMs 0: expected a whole number from 1 to 2147483647",
    ],
    [
      { maxConnections: 0 },
      "maxConnections",
      "Invalid maxConnections 0: expected a whole number from 1 to 1000000",
    ],
    [
      { maxFrameBytes: 1 },
      "maxFrameBytes",
      "Invalid decoder limit maxFrameBytes: must be an integer from 6 to 9007199254740991",
    ],
    [
      { tls: { cert: "c", key: "k", clientAuth: "required" } },
      "tls.ca",
      "Invalid tls options: clientAuth required needs a ca to check client certificates against",
    ],
    [
      { tls: { cert: "c", key: "k", clientAuth: "maybe" as "none" } },
      "tls.clientAuth",
      'Invalid tls.clientAuth "maybe": expected none, optional or required',
    ],
  ];
  for (const [options, field, message] of cases) {
    assert.throws(() => new LumberjackReceiver({ log, onBatch, ...options }), {
      name: "ValidationError",
      field,
      message,
    });
  }
});

test("receiver: listening on a taken port is an unavailable error", async () => {
  const h = await start();
  const other = new LumberjackReceiver({
    port: h.port,
    log: new Context({ logger: new MemoryLogger() }),
    onBatch: async () => {},
  });
  await assert.rejects(other.listen(), (err: Error & { code?: string }) => {
    assert.equal(err.code, "unavailable");
    assert.match(
      err.message,
      new RegExp(`^Cannot listen on 127\\.0\\.0\\.1:${h.port}: .*EADDRINUSE`),
    );
    return true;
  });
  other.destroy();
});
