/**
 * The streaming frame decoder: round trips against the encoders under any
 * split of the bytes, every limit with its exact error, hostile compressed
 * content (a zip bomb included), and byte-for-byte survival of v1 values.
 */
import assert from "node:assert/strict";
import { constants } from "node:buffer";
import { test } from "node:test";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { createDeflate, deflateSync } from "node:zlib";

import fc from "fast-check";

import { ProtocolError, ValidationError } from "../../src/errors.js";
import {
  encodeCompressed,
  encodeFrame,
  encodeFrames,
  FrameDecoder,
  type DecoderLimits,
  type Frame,
  type Version,
} from "../../src/lumberjack/index.js";

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ""), "hex");
}

/** A 'C' frame around any payload, written out without the encoder. */
function compressedFrame(version: Version, payload: Buffer): Buffer {
  const header = Buffer.alloc(6);
  header[0] = version === 1 ? 0x31 : 0x32;
  header[1] = 0x43;
  header.writeUInt32BE(payload.length, 2);
  return Buffer.concat([header, payload]);
}

/** Feeds `bytes` in the given chunk sizes (the rest in one piece). */
function feed(decoder: FrameDecoder, bytes: Buffer, sizes: number[] = []) {
  const frames: Frame[] = [];
  let at = 0;
  for (const size of sizes) {
    if (at >= bytes.length) break;
    frames.push(...decoder.push(bytes.subarray(at, at + size)));
    at += size;
  }
  if (at < bytes.length) frames.push(...decoder.push(bytes.subarray(at)));
  return frames;
}

function decodeAll(bytes: Buffer, limits?: DecoderLimits): Frame[] {
  const decoder = new FrameDecoder(limits);
  const frames = decoder.push(bytes);
  assert.equal(decoder.buffered, 0);
  return frames;
}

const bytesArb = (maxLength: number) =>
  fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
const u32 = fc.nat({ max: 0xffff_ffff });
const versionArb = fc.constantFrom<Version>(1, 2);

/** Any frame the decoder returns (compressed frames are expanded). */
function plainFrameArb(version: Version): fc.Arbitrary<Frame> {
  // fc.record builds null-prototype objects; the decoder builds plain ones.
  return anyFrameArb(version).map((frame) => ({ ...frame }));
}

function anyFrameArb(version: Version): fc.Arbitrary<Frame> {
  const common: fc.Arbitrary<Frame>[] = [
    fc.record({
      type: fc.constant("window" as const),
      version: fc.constant(version),
      size: fc.nat({ max: 65_536 }),
    }),
    fc.record({
      type: fc.constant("ack" as const),
      version: fc.constant(version),
      seq: u32,
    }),
  ];
  const data: fc.Arbitrary<Frame> =
    version === 1
      ? fc.record({
          type: fc.constant("data" as const),
          version: fc.constant(1 as const),
          seq: u32,
          pairs: fc.array(fc.tuple(bytesArb(16), bytesArb(40)), {
            minLength: 1,
            maxLength: 6,
          }),
        })
      : fc.record({
          type: fc.constant("json" as const),
          version: fc.constant(2 as const),
          seq: u32,
          payload: bytesArb(80),
        });
  return fc.oneof(...common, data, data);
}

/** A piece of a stream: one frame, or frames sent in one 'C' frame. */
type Piece =
  { frame: Frame } | { version: Version; level: number; frames: Frame[] };

const pieceArb: fc.Arbitrary<Piece> = versionArb.chain((version) =>
  fc.oneof(
    plainFrameArb(version).map((frame) => ({ frame })),
    fc.record({
      version: fc.constant(version),
      level: fc.constantFrom(0, 1, 6),
      frames: fc.array(plainFrameArb(version), { maxLength: 8 }),
    }),
  ),
);

function encodePieces(pieces: Piece[]): { bytes: Buffer; frames: Frame[] } {
  const parts: Buffer[] = [];
  const frames: Frame[] = [];
  for (const piece of pieces) {
    if ("frame" in piece) {
      parts.push(encodeFrame(piece.frame));
      frames.push(piece.frame);
    } else {
      const inner = encodeFrames(piece.frames);
      parts.push(encodeCompressed(piece.version, inner, piece.level));
      frames.push(...piece.frames);
    }
  }
  return { bytes: Buffer.concat(parts), frames };
}

test("FrameDecoder: any frames, encoded and split anyhow, decode to themselves", () => {
  fc.assert(
    fc.property(
      fc.array(pieceArb, { maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 200 }),
      (pieces, sizes) => {
        const { bytes, frames } = encodePieces(pieces);
        const decoder = new FrameDecoder();
        assert.deepEqual(feed(decoder, bytes, sizes), frames);
        assert.equal(decoder.buffered, 0);
      },
    ),
    { numRuns: 300 },
  );
});

test("FrameDecoder: decoding then encoding gives back the same bytes", () => {
  fc.assert(
    fc.property(
      fc.array(plainFrameArb(1)),
      fc.array(plainFrameArb(2)),
      (a, b) => {
        const bytes = encodeFrames([...a, ...b]);
        assert.deepEqual(encodeFrames(decodeAll(bytes)), bytes);
      },
    ),
    { numRuns: 200 },
  );
});

test("FrameDecoder: a long mixed stream fed one byte at a time", () => {
  const pieces = fc.sample(pieceArb, { numRuns: 400, seed: 42 });
  const { bytes, frames } = encodePieces(pieces);
  const decoder = new FrameDecoder();
  const out: Frame[] = [];
  for (let i = 0; i < bytes.length; i++) {
    out.push(...decoder.push(bytes.subarray(i, i + 1)));
    assert.ok(decoder.buffered < 70_000);
  }
  assert.ok(bytes.length > 20_000, `stream of ${bytes.length} bytes`);
  assert.deepEqual(out, frames);
  assert.equal(decoder.buffered, 0);
});

test("FrameDecoder: big frames fed one byte at a time take linear time", () => {
  const json: Frame = {
    type: "json",
    version: 2,
    seq: 1,
    payload: Buffer.alloc(1024 * 1024, 0x61),
  };
  const pairs = Array.from(
    { length: 4096 },
    (_, i) => [Buffer.from(`key${i}`), Buffer.alloc(64, i)] as [Buffer, Buffer],
  );
  const data: Frame = { type: "data", version: 1, seq: 2, pairs };
  for (const frame of [json, data]) {
    const bytes = encodeFrame(frame);
    const decoder = new FrameDecoder();
    const out: Frame[] = [];
    const started = performance.now();
    for (let i = 0; i < bytes.length; i++) {
      out.push(...decoder.push(bytes.subarray(i, i + 1)));
    }
    const elapsedMs = performance.now() - started;
    assert.deepEqual(out, [frame]);
    // Quadratic work on 1 MiB would take minutes, not seconds.
    assert.ok(elapsedMs < 10_000, `${frame.type}: ${elapsedMs} ms`);
  }
});

test("FrameDecoder: frames stay intact after later pushes reuse its buffer", () => {
  const decoder = new FrameDecoder();
  const first = encodeFrame({
    type: "json",
    version: 2,
    seq: 1,
    payload: Buffer.from('{"a":"first"}'),
  });
  const [held] = feed(decoder, first, [3, 3, 3, 3, 3, 3, 3, 3]);
  decoder.push(hex("32 4a 00000002 0000000d"));
  decoder.push(Buffer.from('{"b":"later"}'));
  assert.deepEqual(held, {
    type: "json",
    version: 2,
    seq: 1,
    payload: Buffer.from('{"a":"first"}'),
  });
});

test("FrameDecoder: invalid UTF-8 in a v1 key and value survives byte for byte", () => {
  const bytes = hex(
    "31 44 00000009 00000002" +
      " 00000002 ff fe 00000004 61 c3 28 80" +
      " 00000004 6c696e65 00000006 ed a0 80 f8 88 80",
  );
  const decoder = new FrameDecoder();
  const frames = feed(decoder, bytes, [1, 1, 5, 7, 2]);
  assert.equal(frames.length, 1);
  const frame = frames[0]!;
  assert.equal(frame.type, "data");
  if (frame.type !== "data") return;
  assert.deepEqual(frame.pairs[0], [hex("ff fe"), hex("61 c3 28 80")]);
  assert.deepEqual(encodeFrame(frame), bytes);
});

/** Each case: bytes (whole or split), limits, the exact error message. */
const VIOLATIONS: {
  name: string;
  bytes: () => Buffer;
  limits?: DecoderLimits;
  message: string;
}[] = [
  {
    name: "an unknown version, refused on its first byte",
    bytes: () => hex("33"),
    message: "Invalid frame: unknown version 0x33",
  },
  {
    name: "an unknown type",
    bytes: () => hex("32 5a"),
    message: "Invalid frame: unknown type 0x5a after version 2",
  },
  {
    name: "a 'D' frame in version 2",
    bytes: () => hex("32 44"),
    message: "Invalid frame: data frame 'D' is not allowed in version 2",
  },
  {
    name: "a 'J' frame in version 1",
    bytes: () => hex("31 4a"),
    message: "Invalid frame: JSON frame 'J' is not allowed in version 1",
  },
  {
    name: "a data frame with zero pairs",
    bytes: () => hex("31 44 00000001 00000000"),
    message: "Invalid frame: 'D' frame has zero pairs",
  },
  {
    name: "a data frame with more pairs than maxPairs",
    bytes: () => hex("31 44 00000001 00000003"),
    limits: { maxPairs: 2 },
    message: "Invalid frame: 'D' frame has 3 pairs, over the limit of 2",
  },
  {
    name: "a data frame whose pair count alone passes maxFrameBytes",
    bytes: () => hex("31 44 00000001 00001000"),
    limits: { maxFrameBytes: 1000 },
    message:
      "Invalid frame: 'D' frame of at least 32778 bytes is over the limit of 1000",
  },
  {
    name: "a data frame whose key length passes maxFrameBytes",
    bytes: () => hex("31 44 00000001 00000001 000000c8"),
    limits: { maxFrameBytes: 100 },
    message:
      "Invalid frame: 'D' frame of at least 218 bytes is over the limit of 100",
  },
  {
    name: "a data frame whose last value passes maxFrameBytes",
    bytes: () => hex("31 44 00000001 00000001 00000001 61 00000054"),
    limits: { maxFrameBytes: 100 },
    message: "Invalid frame: 'D' frame of 103 bytes is over the limit of 100",
  },
  {
    name: "a JSON frame over maxFrameBytes, refused on its header",
    bytes: () => hex("32 4a 00000001 0000005b"),
    limits: { maxFrameBytes: 100 },
    message: "Invalid frame: 'J' frame of 101 bytes is over the limit of 100",
  },
  {
    name: "a JSON frame of 4 GiB with the default limit",
    bytes: () => hex("32 4a 00000001 ffffffff"),
    message:
      "Invalid frame: 'J' frame of 4294967305 bytes is over the limit of 16777216",
  },
  {
    name: "a compressed frame over maxFrameBytes",
    bytes: () => hex("31 43 0000005f"),
    limits: { maxFrameBytes: 100 },
    message: "Invalid frame: 'C' frame of 101 bytes is over the limit of 100",
  },
  {
    name: "a window over maxWindow",
    bytes: () => hex("32 57 0000000b"),
    limits: { maxWindow: 10 },
    message: "Invalid frame: window size 11 is over the limit of 10",
  },
  {
    name: "a window over the default maxWindow",
    bytes: () => hex("31 57 00010001"),
    message: "Invalid frame: window size 65537 is over the limit of 65536",
  },
  {
    name: "a window over maxWindow inside a compressed frame",
    bytes: () => encodeCompressed(2, hex("32 57 0000000b"), 6),
    limits: { maxWindow: 10 },
    message: "Invalid frame: window size 11 is over the limit of 10",
  },
  {
    name: "compressed content that is not zlib",
    bytes: () => compressedFrame(1, hex("00 01 02 03")),
    message:
      "Invalid compressed frame: zlib data does not inflate (incorrect header check)",
  },
  {
    name: "an empty compressed payload",
    bytes: () => compressedFrame(2, Buffer.alloc(0)),
    message:
      "Invalid compressed frame: zlib data does not inflate (unexpected end of file)",
  },
  {
    name: "a truncated zlib stream",
    bytes: () => {
      const zlib = deflateSync(hex("32 41 00000001"));
      return compressedFrame(2, zlib.subarray(0, zlib.length - 3));
    },
    message:
      "Invalid compressed frame: zlib data does not inflate (unexpected end of file)",
  },
  {
    name: "bytes after the end of the zlib stream",
    bytes: () =>
      compressedFrame(
        2,
        Buffer.concat([deflateSync(hex("32 41 00000001")), hex("000102")]),
      ),
    message:
      "Invalid compressed frame: 3 bytes after the end of the zlib stream",
  },
  {
    name: "compressed content that ends mid-frame",
    bytes: () => encodeCompressed(1, hex("31 41 00000001 31 41 00"), 6),
    message:
      "Invalid compressed frame: inflated content ends mid-frame, 3 bytes left over",
  },
  {
    name: "compressed content that ends inside a data frame's pairs",
    bytes: () =>
      encodeCompressed(1, hex("31 44 00000001 00000001 00000001 61"), 1),
    message:
      "Invalid compressed frame: inflated content ends mid-frame, 15 bytes left over",
  },
  {
    name: "a version 2 frame in a version 1 compressed frame",
    bytes: () => encodeCompressed(1, hex("31 41 00000001 32 41 00000002"), 6),
    message:
      "Invalid compressed frame: version 2 frame inside a version 1 compressed frame",
  },
  {
    name: "a version 1 frame in a version 2 compressed frame",
    bytes: () => encodeCompressed(2, hex("31 57 00000001"), 0),
    message:
      "Invalid compressed frame: version 1 frame inside a version 2 compressed frame",
  },
  {
    name: "a bad frame inside compressed content",
    bytes: () => encodeCompressed(2, hex("32 41 00000001 32 5a 000000"), 6),
    message: "Invalid frame: unknown type 0x5a after version 2",
  },
  {
    name: "a compressed frame inside a compressed frame by default",
    bytes: () =>
      encodeCompressed(2, encodeCompressed(2, hex("32 41 00000001"), 6), 6),
    message: "Invalid compressed frame: nesting depth 2 is over the limit of 1",
  },
  {
    name: "three levels of compressed frames with maxNesting 2",
    bytes: () =>
      encodeCompressed(
        1,
        encodeCompressed(1, encodeCompressed(1, hex("31 41 00000001"), 1), 1),
        1,
      ),
    limits: { maxNesting: 2 },
    message: "Invalid compressed frame: nesting depth 3 is over the limit of 2",
  },
  {
    name: "any compressed frame with maxNesting 0, refused on its header",
    bytes: () => hex("31 43"),
    limits: { maxNesting: 0 },
    message: "Invalid compressed frame: nesting depth 1 is over the limit of 0",
  },
  {
    name: "inflated content over maxInflatedBytes",
    bytes: () => encodeCompressed(2, Buffer.alloc(1001, 0x32), 6),
    limits: { maxInflatedBytes: 1000 },
    message:
      "Invalid compressed frame: inflated content is over the limit of 1000 bytes",
  },
  {
    name: "a compressed frame expanding to more than maxCompressedFrames",
    bytes: () => encodeCompressed(2, hex("32 41 00000001".repeat(4)), 6),
    limits: { maxCompressedFrames: 3 },
    message: "Invalid compressed frame: expands to more than 3 frames",
  },
  {
    name: "compressed content that does not start with a version",
    bytes: () => encodeCompressed(1, Buffer.alloc(64, 0), 9),
    message: "Invalid frame: unknown version 0x00",
  },
  {
    name: "a small compressed frame of a million acks by default",
    bytes: () => encodeCompressed(1, hex("31 41 00000001".repeat(1 << 20)), 9),
    message: "Invalid compressed frame: expands to more than 65537 frames",
  },
];

for (const { name, bytes, limits, message } of VIOLATIONS) {
  test(`FrameDecoder: refuses ${name}`, () => {
    const input = bytes();
    const expected = (err: unknown) => {
      assert.ok(err instanceof ProtocolError, String(err));
      assert.equal(err.code, "protocol_error");
      assert.equal(err.message, message);
      return true;
    };

    // Whole, then one byte at a time: the same error either way.
    assert.throws(() => new FrameDecoder(limits).push(input), expected);
    const decoder = new FrameDecoder(limits);
    assert.throws(() => {
      for (let i = 0; i < input.length; i++) {
        decoder.push(input.subarray(i, i + 1));
      }
    }, expected);

    // Unusable afterwards, even for good bytes.
    assert.throws(() => decoder.push(hex("32 41 00000001")), expected);
    assert.equal(decoder.buffered, 0);
  });
}

test("FrameDecoder: frames just within every limit are accepted", () => {
  const limits: DecoderLimits = {
    maxFrameBytes: 100,
    maxWindow: 10,
    maxPairs: 2,
    maxInflatedBytes: 12,
    maxCompressedFrames: 2,
  };
  const frames: Frame[] = [
    { type: "window", version: 1, size: 10 },
    {
      type: "json",
      version: 2,
      seq: 1,
      payload: Buffer.alloc(90, 0x20),
    },
    {
      type: "data",
      version: 1,
      seq: 1,
      pairs: [
        [Buffer.alloc(0), Buffer.alloc(0)],
        [Buffer.from("k"), Buffer.alloc(72, 0x61)],
      ],
    },
  ];
  const bytes = encodeFrames(frames);
  assert.deepEqual(feed(new FrameDecoder(limits), bytes, [7, 1, 99]), frames);

  const acks = hex("32 41 00000001 32 41 00000002");
  assert.deepEqual(decodeAll(encodeCompressed(2, acks, 6), limits), [
    { type: "ack", version: 2, seq: 1 },
    { type: "ack", version: 2, seq: 2 },
  ]);
  const nested = encodeCompressed(
    2,
    encodeCompressed(2, hex("32 41 00000003"), 1),
    1,
  );
  assert.deepEqual(decodeAll(nested, { maxNesting: 2 }), [
    { type: "ack", version: 2, seq: 3 },
  ]);
});

test("FrameDecoder: an empty compressed frame holds no frames", () => {
  assert.deepEqual(decodeAll(encodeCompressed(1, Buffer.alloc(0), 6)), []);
});

test("FrameDecoder: a frame split over pushes is held in buffered", () => {
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(hex("32 4a 00000001 00000004 7b")), []);
  assert.equal(decoder.buffered, 11);
  assert.deepEqual(decoder.push(hex("7d 7d 7d 32 41")), [
    {
      type: "json",
      version: 2,
      seq: 1,
      payload: Buffer.from("{}}}"),
    },
  ]);
  assert.equal(decoder.buffered, 2);
});

test("FrameDecoder: a zip bomb is refused at the cap, never inflated whole", async () => {
  // 200 MiB of zeros, deflated as a stream so the test never holds it.
  const mib = Buffer.alloc(1024 * 1024);
  const zlib = await buffer(
    Readable.from(
      (function* () {
        for (let i = 0; i < 200; i++) yield mib;
      })(),
    ).pipe(createDeflate({ level: 9 })),
  );
  assert.ok(zlib.length < 300_000, `bomb of ${zlib.length} bytes`);
  const bytes = compressedFrame(1, zlib);

  const started = performance.now();
  const before = process.memoryUsage().arrayBuffers;
  assert.throws(
    () => new FrameDecoder().push(bytes),
    (err) => {
      assert.ok(err instanceof ProtocolError);
      assert.equal(
        err.message,
        "Invalid compressed frame: inflated content is over the limit of 67108864 bytes",
      );
      // zlib's own output cap stopped it, not a check after inflating.
      assert.equal(
        (err.cause as { code?: string }).code,
        "ERR_BUFFER_TOO_LARGE",
      );
      return true;
    },
  );
  const elapsedMs = performance.now() - started;
  const grownBytes = process.memoryUsage().arrayBuffers - before;
  assert.ok(elapsedMs < 5_000, `${elapsedMs} ms`);
  assert.ok(grownBytes < 150 * 1024 * 1024, `${grownBytes} bytes held`);

  // A small cap stops it after a small amount of work.
  assert.throws(
    () => new FrameDecoder({ maxInflatedBytes: 65_536 }).push(bytes),
    {
      message:
        "Invalid compressed frame: inflated content is over the limit of 65536 bytes",
    },
  );
});

test("FrameDecoder: refuses limits that are not usable numbers", () => {
  const cases: [DecoderLimits, string][] = [
    [
      { maxFrameBytes: 5 },
      "Invalid decoder limit maxFrameBytes: must be an integer from 6 to 9007199254740991",
    ],
    [
      { maxWindow: -1 },
      "Invalid decoder limit maxWindow: must be an integer from 0 to 4294967295",
    ],
    [
      { maxPairs: 0 },
      "Invalid decoder limit maxPairs: must be an integer from 1 to 4294967295",
    ],
    [
      { maxNesting: 1.5 },
      "Invalid decoder limit maxNesting: must be an integer from 0 to 9007199254740991",
    ],
    [
      { maxInflatedBytes: 0 },
      `Invalid decoder limit maxInflatedBytes: must be an integer from 1 to ${constants.MAX_LENGTH}`,
    ],
    [
      { maxCompressedFrames: Number.NaN },
      "Invalid decoder limit maxCompressedFrames: must be an integer from 1 to 9007199254740991",
    ],
  ];
  for (const [limits, message] of cases) {
    assert.throws(
      () => new FrameDecoder(limits),
      (err) => {
        assert.ok(err instanceof ValidationError);
        assert.equal(err.message, message);
        assert.equal(err.field, Object.keys(limits)[0]);
        return true;
      },
    );
  }
});
