/**
 * LumberjackReceiver with onRawBatch: events reach the handler as the
 * frames that carried them (v2 payload bytes checked, not parsed; v1 pairs
 * as bytes), a bad v2 payload closes the connection as on the parsed
 * path, and the handler options are checked.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { LumberjackClient } from "../../src/lumberjack/client.js";
import {
  encodeCompressed,
  encodeFrame,
  type Frame,
  type Version,
} from "../../src/lumberjack/index.js";
import {
  LumberjackReceiver,
  type BatchInfo,
  type LumberjackReceiverOptions,
  type RawEvent,
} from "../../src/lumberjack/receiver.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { exchange } from "./peer.js";

const receivers: LumberjackReceiver[] = [];
const clients: LumberjackClient[] = [];

after(() => {
  for (const c of clients) c.destroy();
  for (const r of receivers) r.destroy();
});

interface Harness {
  receiver: LumberjackReceiver;
  port: number;
  logger: MemoryLogger;
  batches: { events: RawEvent[]; info: BatchInfo }[];
}

async function start(): Promise<Harness> {
  const logger = new MemoryLogger();
  const batches: Harness["batches"] = [];
  const receiver = new LumberjackReceiver({
    port: 0,
    log: new Context({ logger }),
    onRawBatch: (events, info) => {
      batches.push({ events, info });
      return Promise.resolve();
    },
  });
  receivers.push(receiver);
  const { port } = await receiver.listen();
  return { receiver, port, logger, batches };
}

const window = (version: Version, size: number) =>
  encodeFrame({ type: "window", version, size });
const json = (seq: number, payload: string | Buffer) =>
  encodeFrame({
    type: "json",
    version: 2,
    seq,
    payload: typeof payload === "string" ? Buffer.from(payload) : payload,
  });
const ack = (version: Version, seq: number): Frame => ({
  type: "ack",
  version,
  seq,
});

// Invalid UTF-8 inside a string: kept as it came.
const BAD_UTF8 = Buffer.concat([
  Buffer.from('{"bad":"'),
  Buffer.from([0xff, 0xc3]),
  Buffer.from('"}'),
]);

test("receiver: onRawBatch gets v2 payloads byte for byte, compressed or not", async () => {
  const h = await start();
  const payloads = [
    Buffer.from(' { "b" : [1, 2.50] ,\n"a":"\\u00e9\\n" } '),
    BAD_UTF8,
    Buffer.from('{"line":"x"}'),
  ];
  const plain = await exchange(h.port, [
    window(2, 2),
    json(4, payloads[0] as Buffer),
    json(9, payloads[1] as Buffer),
  ]);
  assert.deepEqual(plain.acks, [ack(2, 9)]);
  const packed = await exchange(h.port, [
    window(2, 1),
    encodeCompressed(2, json(1, payloads[2] as Buffer), 1),
  ]);
  assert.deepEqual(packed.acks, [ack(2, 1)]);

  assert.deepEqual(
    h.batches.map((b) => b.events),
    [
      [
        { type: "json", version: 2, seq: 4, payload: payloads[0] },
        { type: "json", version: 2, seq: 9, payload: payloads[1] },
      ],
      [{ type: "json", version: 2, seq: 1, payload: payloads[2] }],
    ],
  );
  assert.deepEqual(
    h.batches.map((b) => [b.info.version, b.info.seq]),
    [
      [2, 9],
      [2, 1],
    ],
  );
  assert.equal(h.receiver.stats().events, 3);
});

test("receiver: onRawBatch gets v1 pairs as their bytes, and events from our client", async () => {
  const h = await start();
  const pairs: [Buffer, Buffer][] = [
    [Buffer.from("line"), Buffer.from([0x61, 0xff, 0x62])],
    [Buffer.from("n"), Buffer.from("1")],
  ];
  const result = await exchange(h.port, [
    window(1, 1),
    encodeFrame({ type: "data", version: 1, seq: 3, pairs }),
  ]);
  assert.deepEqual(result.acks, [ack(1, 3)]);
  assert.deepEqual(h.batches[0]?.events, [
    { type: "data", version: 1, seq: 3, pairs },
  ]);

  for (const version of [1, 2] as const) {
    const c = new LumberjackClient({
      host: "127.0.0.1",
      port: h.port,
      version,
      compressionLevel: 1,
    });
    clients.push(c);
    await c.send([{ line: "hello", n: 2 }]);
    await c.close();
  }
  const [v1, v2] = h.batches.slice(1).map((b) => b.events[0]);
  assert.equal(v1?.type, "data");
  assert.deepEqual(
    v1?.type === "data" ? v1.pairs.map((p) => p.map(String)) : [],
    [
      ["line", "hello"],
      ["n", "2"],
    ],
  );
  assert.equal(v2?.type, "json");
  assert.equal(
    v2?.type === "json" ? v2.payload.toString() : "",
    '{"line":"hello","n":2}',
  );
});

test("receiver: a bad v2 payload on the raw path closes the connection, logged with what and where, without an ack", async () => {
  const h = await start();
  const cases: [string, Buffer[], string][] = [
    [
      "an array",
      [window(2, 1), json(1, "[1,2]")],
      "Invalid JSON event at sequence 1: unexpected '[' at byte 0, expected an object",
    ],
    [
      "a cut object, second in its batch",
      [window(2, 2), json(1, "{}"), json(2, '{"a":1')],
      "Invalid JSON event at sequence 2: unexpected end at byte 6, expected ',' or '}'",
    ],
    [
      "a raw newline in a string, inside a compressed frame",
      [window(2, 1), encodeCompressed(2, json(7, '{"a":"x\ny"}'), 6)],
      "Invalid JSON event at sequence 7: unescaped control byte 0x0a at byte 7 in a string",
    ],
    [
      "an empty payload",
      [window(2, 1), json(1, "")],
      "Invalid JSON event at sequence 1: unexpected end at byte 0, expected an object",
    ],
    [
      "bad JSON with a bad sequence: the sequence is reported",
      [window(2, 2), json(5, "{}"), json(5, "{")],
      "Invalid data frame: sequence 5 does not follow 5",
    ],
  ];
  for (const [name, chunks, message] of cases) {
    h.logger.clear();
    const result = await exchange(h.port, chunks, { end: false });
    assert.equal(result.closed, true, name);
    assert.deepEqual(result.acks, [], name);
    const logged = (at: string) => h.logger.records.filter((r) => r.at === at);
    assert.deepEqual(
      logged("protocol_error").map((r) => r.err),
      [message],
      name,
    );
    assert.equal(logged("close")[0]?.reason, "protocol_error", name);
  }
  assert.equal(h.batches.length, 0);
  assert.equal(h.receiver.stats().events, 0);
});

test("receiver: a rejecting onRawBatch closes the connection without an ack", async () => {
  const logger = new MemoryLogger();
  const receiver = new LumberjackReceiver({
    port: 0,
    log: new Context({ logger }),
    onRawBatch: () => Promise.reject(new Error("Disk full")),
  });
  receivers.push(receiver);
  const { port } = await receiver.listen();
  const result = await exchange(port, [window(2, 1), json(1, "{}")], {
    end: false,
  });
  assert.equal(result.closed, true);
  assert.deepEqual(result.acks, []);
  assert.deepEqual(
    logger.records.filter((r) => r.at === "batch_failed").map((r) => r.err),
    ["Disk full"],
  );
  assert.equal(receiver.stats().batches, 0);
});

test("receiver: exactly one of onBatch and onRawBatch, a function", () => {
  const log = new Context({ logger: new MemoryLogger() });
  const handler = async () => {};
  const cases: [object, string, string][] = [
    [{}, "onBatch", "Invalid onBatch: expected a function"],
    [{ onBatch: "x" }, "onBatch", "Invalid onBatch: expected a function"],
    [
      { onRawBatch: 1 },
      "onRawBatch",
      "Invalid onRawBatch: expected a function",
    ],
    [
      { onBatch: handler, onRawBatch: handler },
      "onRawBatch",
      "Invalid onRawBatch: give onBatch or onRawBatch, not both",
    ],
  ];
  for (const [handlers, field, message] of cases) {
    const options = { log, ...handlers } as LumberjackReceiverOptions;
    assert.throws(() => new LumberjackReceiver(options), {
      name: "ValidationError",
      field,
      message,
    });
  }
  const raw = new LumberjackReceiver({ log, onRawBatch: handler });
  raw.destroy();
});
