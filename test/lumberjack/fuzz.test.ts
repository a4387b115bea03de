/**
 * Hostile input for the receiver: fast-check builds byte streams from
 * valid batches, random frames, compressed frames of random frames and
 * random bytes, then mutates them (flips, deletions, insertions,
 * truncation) and sends them in random pieces. Bounded in runs and time.
 *
 * The model: decode the same bytes with the codec and list every window
 * whose events were all read (windows hold until the next one). The
 * receiver is stricter than the model, and stops at its first error, so
 * the batches it hands on must be a prefix of that list, and every ack a
 * client sees must be for one of those batches. A good client must be
 * served throughout, and nothing may crash.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, test } from "node:test";

import fc from "fast-check";

import { LumberjackClient } from "../../src/lumberjack/client.js";
import {
  encodeCompressed,
  encodeFrame,
  FrameDecoder,
  objectToPairs,
  type DecoderLimits,
  type Frame,
  type Version,
} from "../../src/lumberjack/index.js";
import { LumberjackReceiver } from "../../src/lumberjack/receiver.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { waitFor } from "../helpers.js";

const LIMITS: DecoderLimits = {
  maxWindow: 64,
  maxFrameBytes: 64 * 1024,
  maxInflatedBytes: 256 * 1024,
};
const RUNS = 3000;
const TIME_LIMIT_MS = 90_000;

const receivers: LumberjackReceiver[] = [];
const clients: LumberjackClient[] = [];
after(() => {
  for (const c of clients) c.destroy();
  for (const r of receivers) r.destroy();
});

const version = fc.constantFrom<Version>(1, 2);
const text = fc.string({ maxLength: 8 });
const bytes = (maxLength: number) =>
  fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));

const validBatch = fc
  .record({
    version,
    events: fc.array(fc.dictionary(text, text, { minKeys: 1, maxKeys: 3 }), {
      minLength: 1,
      maxLength: 5,
    }),
    level: fc.constantFrom(0, 1, 6),
    firstSeq: fc.integer({ min: 1, max: 1000 }),
  })
  .map(({ version, events, level, firstSeq }) => {
    const frames = events.map((event, i): Frame =>
      version === 1
        ? {
            type: "data",
            version,
            seq: firstSeq + i,
            pairs: objectToPairs(event),
          }
        : {
            type: "json",
            version,
            seq: firstSeq + i,
            payload: Buffer.from(JSON.stringify(event)),
          },
    );
    const body = Buffer.concat(frames.map(encodeFrame));
    const window = encodeFrame({
      type: "window",
      version,
      size: events.length,
    });
    return Buffer.concat([
      window,
      level === 0 ? body : encodeCompressed(version, body, level),
    ]);
  });

const seq = fc.integer({ min: 0, max: 12 });
const randomFrame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({
    type: fc.constant("window" as const),
    version,
    size: fc.integer({ min: 0, max: 80 }),
  }),
  fc.record({
    type: fc.constant("data" as const),
    version: fc.constant(1 as const),
    seq,
    pairs: fc.array(fc.tuple(bytes(6), bytes(6)), {
      minLength: 1,
      maxLength: 3,
    }),
  }),
  fc.record({
    type: fc.constant("json" as const),
    version: fc.constant(2 as const),
    seq,
    payload: fc.oneof(
      fc.json({ maxDepth: 2 }).map((j) => Buffer.from(j)),
      bytes(12),
    ),
  }),
  fc.record({ type: fc.constant("ack" as const), version, seq }),
);
const randomFrames = fc.array(randomFrame, { maxLength: 6 });
const compressedRandom = fc
  .tuple(version, randomFrames, fc.constantFrom(0, 6))
  .map(([v, frames, level]) =>
    encodeCompressed(v, Buffer.concat(frames.map(encodeFrame)), level),
  );

const piece = fc.oneof(
  { weight: 4, arbitrary: validBatch },
  { weight: 3, arbitrary: randomFrame.map(encodeFrame) },
  { weight: 1, arbitrary: compressedRandom },
  { weight: 1, arbitrary: bytes(24) },
);

type Mutation =
  | { kind: "flip"; at: number; byte: number }
  | { kind: "delete"; at: number; length: number }
  | { kind: "insert"; at: number; bytes: Buffer }
  | { kind: "truncate"; at: number };

const at = fc.nat({ max: 4096 });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at,
    byte: fc.nat({ max: 255 }),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    at,
    length: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({ kind: fc.constant("insert" as const), at, bytes: bytes(8) }),
  fc.record({ kind: fc.constant("truncate" as const), at }),
);

const input = fc.record({
  pieces: fc.array(piece, { minLength: 1, maxLength: 6 }),
  mutations: fc.array(mutation, { maxLength: 3 }),
  cuts: fc.array(at, { maxLength: 4 }),
});

function mutate(data: Buffer, mutations: Mutation[]): Buffer {
  let out = data;
  for (const m of mutations) {
    if (out.length === 0) break;
    const i = m.at % out.length;
    if (m.kind === "flip") {
      out = Buffer.from(out);
      out[i] = m.byte;
    } else if (m.kind === "delete") {
      out = Buffer.concat([out.subarray(0, i), out.subarray(i + m.length)]);
    } else if (m.kind === "insert") {
      out = Buffer.concat([out.subarray(0, i), m.bytes, out.subarray(i)]);
    } else {
      out = out.subarray(0, i);
    }
  }
  return out;
}

function split(data: Buffer, cuts: number[]): Buffer[] {
  if (data.length === 0) return [];
  const points = [...new Set(cuts.map((c) => c % data.length))].sort(
    (a, b) => a - b,
  );
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of [...points, data.length]) {
    if (point > start) chunks.push(data.subarray(start, point));
    start = Math.max(start, point);
  }
  return chunks;
}

/** Every fully read window as [last seq, events], by the lenient model. */
function modelBatches(data: Buffer): [number, number][] {
  const decoder = new FrameDecoder(LIMITS);
  const frames: Frame[] = [];
  try {
    // One byte at a time: a failed push loses only the frame it breaks.
    for (let i = 0; i < data.length; i++) {
      frames.push(...decoder.push(data.subarray(i, i + 1)));
    }
  } catch {
    // The receiver stops here too.
  }
  const batches: [number, number][] = [];
  let window = 0;
  let count = 0;
  for (const frame of frames) {
    if (frame.type === "window") {
      window = frame.size;
      count = 0;
    } else if (frame.type === "data" || frame.type === "json") {
      count++;
      if (window > 0 && count === window) {
        batches.push([frame.seq, count]);
        count = 0;
      }
    }
  }
  return batches;
}

interface Seen {
  acks: number[];
  closed: boolean;
  localPort: number;
}

function send(port: number, chunks: Buffer[]): Promise<Seen> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    const decoder = new FrameDecoder();
    const seen: Seen = { acks: [], closed: false, localPort: 0 };
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(seen);
    }, 5000);
    socket.on("data", (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        assert.equal(frame.type, "ack", "the receiver sends only acks");
        if (frame.type === "ack" && frame.seq !== 0) seen.acks.push(frame.seq);
      }
    });
    socket.on("error", () => {});
    socket.on("end", () => socket.end());
    socket.on("close", () => {
      clearTimeout(timer);
      seen.closed = true;
      resolve(seen);
    });
    socket.once("connect", () => {
      seen.localPort = socket.localPort ?? 0;
      for (const chunk of chunks) socket.write(chunk);
      socket.end();
    });
  });
}

test("fuzz: mutated and random frames never crash the receiver, never get a batch acked that was not fully read, and a good client stays served", async () => {
  const handed = new Map<number, [number, number][]>();
  const logger = new MemoryLogger();
  const receiver = new LumberjackReceiver({
    port: 0,
    log: new Context({ logger }),
    ...LIMITS,
    keepaliveMs: 5,
    onBatch: async (events, info) => {
      const port = Number(info.remote.split(":").at(-1));
      const list = handed.get(port) ?? [];
      list.push([info.seq, events.length]);
      handed.set(port, list);
      // Now and then slow enough for keepalives.
      if (events.length === 3) await new Promise((r) => setTimeout(r, 12));
    },
  });
  receivers.push(receiver);
  const { port } = await receiver.listen();
  const good = new LumberjackClient({ host: "127.0.0.1", port });
  clients.push(good);
  let runs = 0;
  let framesSent = 0;
  let acked = 0;

  await fc.assert(
    fc.asyncProperty(input, async ({ pieces, mutations, cuts }) => {
      const data = mutate(Buffer.concat(pieces), mutations);
      const expected = modelBatches(data);
      const seen = await send(port, split(data, cuts));
      runs++;
      framesSent += pieces.length;

      assert.equal(seen.closed, true, "the receiver ends every connection");
      const batches = handed.get(seen.localPort) ?? [];
      handed.delete(seen.localPort);
      assert.deepEqual(
        batches,
        expected.slice(0, batches.length),
        "batches handed on are windows fully read, in order",
      );
      const ackable = batches.map(([seq]) => seq);
      assert.deepEqual(
        seen.acks,
        ackable.slice(0, seen.acks.length),
        "acks only for batches handed on",
      );
      acked += seen.acks.length;
      if (runs % 100 === 0) await good.send([{ run: runs }]);
    }),
    { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS },
  );

  await good.send([{ done: true }]);
  await good.close();
  await waitFor(
    () => receiver.stats().connections === 0,
    "every connection to close",
  );
  assert.ok(runs >= 200, `only ${runs} runs`);
  assert.ok(acked > 0, "some batches got through");
  assert.ok(
    logger.records.some((r) => r.at === "protocol_error"),
    "some input was refused",
  );
  process.stderr.write(
    `fuzz: ${runs} runs, ${framesSent} pieces, ${acked} batches acked\n`,
  );
});
