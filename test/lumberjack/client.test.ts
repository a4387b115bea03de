import assert from "node:assert/strict";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { ProtocolError, UnavailableError } from "../../src/errors.js";
import {
  LumberjackClient,
  type LumberjackClientOptions,
} from "../../src/lumberjack/client.js";
import {
  encodeFrame,
  pairsToObject,
  type Frame,
} from "../../src/lumberjack/index.js";
import { waitFor } from "../helpers.js";
import { startPeer, startRawServer, type ScriptedPeer } from "./peer.js";

const started: { close(): Promise<void> }[] = [];
const clients: LumberjackClient[] = [];

after(async () => {
  for (const client of clients) client.destroy();
  await Promise.all(started.map((s) => s.close()));
});

async function peer(...args: Parameters<typeof startPeer>) {
  const p = await startPeer(...args);
  started.push(p);
  return p;
}

function client(
  port: number,
  options: Partial<LumberjackClientOptions> = {},
): LumberjackClient {
  const c = new LumberjackClient({ host: "127.0.0.1", port, ...options });
  clients.push(c);
  return c;
}

function eventsOf(p: ScriptedPeer): unknown[] {
  return p.batches.flatMap((b) => b.events.map(decodeEvent));
}

function decodeEvent(frame: Frame): unknown {
  if (frame.type === "json") {
    return JSON.parse(frame.payload.toString()) as unknown;
  }
  return frame.type === "data" ? pairsToObject(frame.pairs) : null;
}

test("client: v2 batch, compressed, waits through Logstash-style keepalives for the one ack", async () => {
  const p = await peer((batch) => {
    // Logstash acks a window once it is handed on, keepalives meanwhile.
    const keepalive = setInterval(() => batch.ack(0), 40);
    setTimeout(() => {
      clearInterval(keepalive);
      batch.ack(batch.seqs.at(-1) as number);
    }, 800);
  });
  // The ack comes long after ackTimeoutMs: only keepalives keep it alive.
  const c = client(p.port, { ackTimeoutMs: 300 });
  let keepalives = 0;
  const acked: unknown[] = [];
  const sent: unknown[] = [];
  c.on("keepalive", () => keepalives++);
  c.on("acked", (info) => acked.push(info));
  c.on("sent", (info) => sent.push(info));

  await c.send([{ line: "one", n: 1 }, { line: "two" }, { line: "three" }]);

  assert.ok(keepalives >= 4, `only ${keepalives} keepalives`);
  assert.deepEqual(p.batches[0]?.seqs, [1, 2, 3]);
  assert.equal(p.batches[0]?.version, 2);
  assert.deepEqual(eventsOf(p), [
    { line: "one", n: 1 },
    { line: "two" },
    { line: "three" },
  ]);
  assert.deepEqual(acked, [{ seq: 3, acked: 3, events: 3, complete: true }]);
  assert.equal(sent.length, 1);
  assert.deepEqual(
    { ...(sent[0] as object), bytes: 0 },
    { events: 3, bytes: 0, firstSeq: 1, lastSeq: 3 },
  );
});

test("client: v2 counts 1..N in every batch and takes go-lumber's ack with the count", async () => {
  const p = await peer((batch) => batch.ack(batch.events.length));
  const c = client(p.port, { compressionLevel: 0 });
  await c.send([{ a: 1 }, { a: 2 }]);
  await c.send([{ a: 3 }, { a: 4 }, { a: 5 }]);
  assert.deepEqual(
    p.batches.map((b) => b.seqs),
    [
      [1, 2],
      [1, 2, 3],
    ],
  );
  assert.equal(p.connections, 1);
});

test("client: v1 sequence numbers count per connection and restart on a new one", async () => {
  let drop = false;
  const p = await peer((batch) => {
    batch.ack(batch.seqs.at(-1) as number);
    if (drop) batch.socket.end();
  });
  const c = client(p.port, { version: 1 });
  await c.send([{ line: "a" }, { line: "b" }]);
  await c.send([{ line: "c" }]);
  drop = true;
  await c.send([{ line: "d" }, { line: "e" }]);
  await waitFor(() => !c.connected, "the client to see the close");
  await c.send([{ line: "f" }]);

  assert.deepEqual(
    p.batches.map((b) => [b.connection, b.version, ...b.seqs]),
    [
      [1, 1, 1, 2],
      [1, 1, 3],
      [1, 1, 4, 5],
      [2, 1, 1],
    ],
  );
  assert.deepEqual(eventsOf(p), [
    { line: "a" },
    { line: "b" },
    { line: "c" },
    { line: "d" },
    { line: "e" },
    { line: "f" },
  ]);
});

test("client: follows partial acks, each one extending the deadline", async () => {
  const p = await peer((batch) => {
    setTimeout(() => batch.ack(1), 150);
    setTimeout(() => batch.ack(3), 300);
    setTimeout(() => batch.ack(3), 350); // a repeat changes nothing
    setTimeout(() => batch.ack(4), 450);
  });
  const c = client(p.port, { ackTimeoutMs: 250 });
  const acked: unknown[] = [];
  c.on("acked", (info) => acked.push(info));
  await c.send([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
  assert.deepEqual(acked, [
    { seq: 1, acked: 1, events: 4, complete: false },
    { seq: 3, acked: 3, events: 4, complete: false },
    { seq: 4, acked: 4, events: 4, complete: true },
  ]);
});

test("client: v1 takes a v2 keepalive, as Logstash sends them to every client", async () => {
  const p = await peer((batch) => {
    batch.socket.write(encodeFrame({ type: "ack", version: 2, seq: 0 }));
    setTimeout(() => batch.ack(batch.seqs.at(-1) as number), 50);
  });
  const c = client(p.port, { version: 1, compressionLevel: 1 });
  let keepalives = 0;
  c.on("keepalive", () => keepalives++);
  await c.send([{ line: "x" }]);
  assert.equal(keepalives, 1);
});

test("client: an ack beyond the batch is a protocol error that drops the connection", async () => {
  const p = await peer((batch) => batch.ack(batch.events.length + 1));
  const c = client(p.port);
  const errors: Error[] = [];
  c.on("error", (err) => errors.push(err));
  await assert.rejects(
    c.send([{ a: 1 }, { a: 2 }]),
    (err: Error) =>
      err instanceof ProtocolError &&
      err.message ===
        `Ack for sequence 3 from 127.0.0.1:${p.port} is beyond the batch: ` +
          "the batch ends at sequence 2",
  );
  assert.equal(errors.length, 1);
  assert.equal(c.connected, false);
  await waitFor(() => p.closedConnections === 1, "the peer to see the close");
});

test("client: frames other than acks and undecodable bytes are protocol errors", async () => {
  const cases: [string, Buffer, RegExp][] = [
    [
      "window",
      encodeFrame({ type: "window", version: 2, size: 1 }),
      /^Unexpected window frame from 127\.0\.0\.1:\d+: a server sends only acks$/,
    ],
    [
      "garbage",
      Buffer.from("HTTP/1.1 400 Bad Request\r\n\r\n"),
      /^Bad frame from 127\.0\.0\.1:\d+: /,
    ],
  ];
  for (const [name, reply, message] of cases) {
    const p = await peer((batch) => batch.socket.write(reply));
    const c = client(p.port);
    await assert.rejects(
      c.send([{ a: 1 }]),
      (err: Error) => err instanceof ProtocolError && message.test(err.message),
      name,
    );
  }
});

test("client: a server that never acks times out and the connection is dropped", async () => {
  const p = await peer(() => {});
  const c = client(p.port, { ackTimeoutMs: 200 });
  const begun = Date.now();
  await assert.rejects(
    c.send([{ a: 1 }]),
    (err: Error) =>
      err instanceof UnavailableError &&
      err.message ===
        `Timed out waiting for an ack of sequence 1 to 127.0.0.1:${p.port}: ` +
          "nothing for 200 ms",
  );
  assert.ok(Date.now() - begun >= 190);
  await waitFor(() => p.closedConnections === 1, "the peer to see the close");
});

test("client: keepalives alone do not complete a batch; the next send reconnects", async () => {
  let stall = true;
  const p = await peer((batch) => {
    if (stall) {
      batch.ack(0);
      return;
    }
    batch.ack(batch.seqs.at(-1) as number);
  });
  const c = client(p.port, { ackTimeoutMs: 150 });
  await assert.rejects(c.send([{ a: 1 }]), UnavailableError);
  stall = false;
  await c.send([{ a: 2 }]);
  assert.equal(p.connections, 2);
});

test("client: a connection closed before the ack rejects the batch", async () => {
  const p = await peer((batch) => batch.socket.destroy());
  const c = client(p.port);
  await assert.rejects(
    c.send([{ a: 1 }]),
    (err: Error) =>
      err instanceof UnavailableError &&
      err.message ===
        `Connection to 127.0.0.1:${p.port} closed before the batch was acknowledged`,
  );
});

test("client: a write that cannot finish times out", async () => {
  // The server never reads, so the kernel buffers fill up.
  const server = await startRawServer((socket) => socket.pause());
  started.push(server);
  const c = client(server.port, { compressionLevel: 0, writeTimeoutMs: 300 });
  const line = "x".repeat(1000);
  const events = Array.from({ length: 40_000 }, () => ({ line }));
  await assert.rejects(
    c.send(events),
    (err: Error) =>
      err instanceof UnavailableError &&
      err.message ===
        `Timed out writing a batch of 40000 events to 127.0.0.1:${server.port}: ` +
          "nothing for 300 ms",
  );
});

test("client: connect fails clearly when refused or when the handshake never ends", async () => {
  const closed = await startRawServer(() => {});
  const port = closed.port;
  await closed.close();
  await assert.rejects(
    client(port).connect(),
    (err: Error) =>
      err instanceof UnavailableError &&
      err.message.startsWith(
        `Cannot connect to 127.0.0.1:${port}: connect ECONNREFUSED`,
      ),
  );

  // A TCP server that never answers the TLS handshake.
  const silent = await startRawServer(() => {});
  started.push(silent);
  const c = client(silent.port, {
    tls: { rejectUnauthorized: false },
    connectTimeoutMs: 200,
  });
  await assert.rejects(
    c.connect(),
    (err: Error) =>
      err instanceof UnavailableError &&
      err.message ===
        `Cannot connect to 127.0.0.1:${silent.port}: no connection after 200 ms`,
  );
});

test("client: an event that cannot be encoded is refused before anything is sent", async () => {
  const p = await peer((batch) => batch.ack(batch.events.length));
  const c = client(p.port);
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  await assert.rejects(
    c.send([{ ok: true }, cyclic]),
    (err: Error & { field?: string }) =>
      err.name === "ValidationError" &&
      err.field === "events[1]" &&
      err.message.startsWith("Invalid event 1: Converting circular structure"),
  );
  await assert.rejects(c.send([null as unknown as Record<string, unknown>]), {
    message: "Invalid event 0: expected an object",
  });
  await c.send([{ ok: true }]);
  assert.deepEqual(eventsOf(p), [{ ok: true }]);
});

test("client: batches sent together go one at a time, in order", async () => {
  const p = await peer((batch) =>
    setTimeout(() => batch.ack(batch.events.length), 20),
  );
  const c = client(p.port);
  await Promise.all([1, 2, 3, 4].map((n) => c.send([{ n }])));
  assert.deepEqual(eventsOf(p), [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
  await c.send([]);
  assert.equal(p.batches.length, 4, "an empty batch sends nothing");
});

test("client: close lets the batch in flight finish; destroy rejects it", async () => {
  const p = await peer((batch) =>
    setTimeout(() => batch.ack(batch.events.length), 100),
  );
  const c = client(p.port);
  const sending = c.send([{ a: 1 }]);
  await sleep(10);
  await Promise.all([sending, c.close(), c.close()]);
  await assert.rejects(c.send([{ a: 2 }]), {
    message: `Cannot send to 127.0.0.1:${p.port}: the client is closed`,
  });
  await waitFor(() => p.closedConnections === 1, "the close");

  const d = client(p.port);
  const lost = d.send([{ a: 3 }]);
  await waitFor(() => p.batches.length === 2, "the second batch");
  d.destroy();
  d.destroy();
  await assert.rejects(lost, {
    message: `Batch to 127.0.0.1:${p.port} abandoned: the client was destroyed`,
  });
});

test("client: options are checked at construction, naming the field", () => {
  const cases: [Partial<LumberjackClientOptions>, string, string][] = [
    [{ host: "" }, "host", "Invalid host: must be a non-empty string"],
    [
      { port: 0 },
      "port",
      "Invalid port 0: expected a whole number from 1 to 65535",
    ],
    [{ version: 3 as 1 }, "version", "Invalid version 3: expected 1 or 2"],
    [
      { compressionLevel: 10 },
      "compressionLevel",
      "Invalid compressionLevel 10: expected a whole number from 0 to 9",
    ],
    [
      { ackTimeoutMs: 0 },
      "ackTimeoutMs",
      "Invalid ackTimeoutMs 0: expected a whole number from 1 to 2147483647",
    ],
    [
      { tls: { cert: "x" } },
      "tls.key",
      "Invalid tls options: cert needs a key",
    ],
    [
      { tls: { ca: "not a certificate" } },
      "tls.ca",
      "Invalid tls.ca: no PEM certificate found",
    ],
  ];
  for (const [options, field, message] of cases) {
    assert.throws(
      () => new LumberjackClient({ host: "127.0.0.1", port: 5044, ...options }),
      { name: "ValidationError", field, message },
    );
  }
});
