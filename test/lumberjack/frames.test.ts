/**
 * Lumberjack frames: golden bytes written out by hand from the layouts in
 * docs/lumberjack.md, encoded and decoded; the encoder's refusals; the
 * conversions between v1 pairs and event objects.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { inflateSync } from "node:zlib";

import { ProtocolError, ValidationError } from "../../src/errors.js";
import {
  encodeCompressed,
  encodeCompressedAsync,
  encodeFrame,
  encodeFrames,
  FrameDecoder,
  objectToPairs,
  pairsToObject,
  type Frame,
} from "../../src/lumberjack/index.js";

/** Hex with spaces between fields, for goldens that can be read. */
function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ""), "hex");
}

function pair(key: string, value: string): [Buffer, Buffer] {
  return [Buffer.from(key), Buffer.from(value)];
}

/** A v1 data frame, seq 1, one pair a=b: 20 bytes. */
const DATA_A_B = "31 44 00000001 00000001 00000001 61 00000001 62";

/**
 * zlib (RFC 1950) of DATA_A_B at level 0: header 78 01, one final stored
 * block (01, LEN 0x0014 and NLEN 0xffeb little-endian), the bytes, then
 * the Adler-32 of the bytes, big-endian.
 */
const ZLIB_STORED_A_B = `78 01 01 1400 ebff ${DATA_A_B} 0bbf013d`;

const GOLDENS: { name: string; frame: Frame; bytes: string }[] = [
  {
    name: "v1 window",
    frame: { type: "window", version: 1, size: 1000 },
    bytes: "31 57 000003e8",
  },
  {
    name: "v2 window",
    frame: { type: "window", version: 2, size: 65_536 },
    bytes: "32 57 00010000",
  },
  {
    name: "v1 ack",
    frame: { type: "ack", version: 1, seq: 5 },
    bytes: "31 41 00000005",
  },
  {
    name: "v2 ack, largest sequence",
    frame: { type: "ack", version: 2, seq: 0xdeadbeef },
    bytes: "32 41 deadbeef",
  },
  {
    name: "v2 keepalive ack",
    frame: { type: "ack", version: 2, seq: 0 },
    bytes: "32 41 00000000",
  },
  {
    name: "v1 data, two pairs in order",
    frame: {
      type: "data",
      version: 1,
      seq: 1,
      pairs: [pair("line", "hi"), pair("n", "3")],
    },
    bytes:
      "31 44 00000001 00000002" +
      " 00000004 6c696e65 00000002 6869" +
      " 00000001 6e 00000001 33",
  },
  {
    name: "v1 data, empty key and value",
    frame: { type: "data", version: 1, seq: 258, pairs: [pair("", "")] },
    bytes: "31 44 00000102 00000001 00000000 00000000",
  },
  {
    name: "v1 data, byte lengths of UTF-8 and invalid bytes",
    frame: {
      type: "data",
      version: 1,
      seq: 2,
      pairs: [[Buffer.from("é"), hex("ff c3 28")]],
    },
    bytes: "31 44 00000002 00000001 00000002 c3a9 00000003 ffc328",
  },
  {
    name: "v2 JSON",
    frame: {
      type: "json",
      version: 2,
      seq: 7,
      payload: Buffer.from('{"a":1}'),
    },
    bytes: "32 4a 00000007 00000007 7b2261223a317d",
  },
  {
    name: "v2 JSON, empty payload",
    frame: { type: "json", version: 2, seq: 1, payload: Buffer.alloc(0) },
    bytes: "32 4a 00000001 00000000",
  },
  {
    name: "v1 compressed, raw zlib payload",
    frame: { type: "compressed", version: 1, payload: hex(ZLIB_STORED_A_B) },
    bytes: `31 43 0000001f ${ZLIB_STORED_A_B}`,
  },
  {
    name: "v2 compressed, zlib of nothing",
    frame: {
      type: "compressed",
      version: 2,
      payload: hex("78 9c 03 00 00000001"),
    },
    bytes: "32 43 00000008 789c0300 00000001",
  },
];

for (const { name, frame, bytes } of GOLDENS) {
  test(`encodeFrame: ${name}`, () => {
    assert.equal(
      encodeFrame(frame).toString("hex"),
      hex(bytes).toString("hex"),
    );
  });
}

for (const { name, frame, bytes } of GOLDENS) {
  if (frame.type === "compressed") continue; // the decoder expands these
  test(`FrameDecoder: ${name}`, () => {
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(hex(bytes)), [frame]);
    assert.equal(decoder.buffered, 0);
  });
}

test("FrameDecoder: a compressed golden expands to the frame it holds", () => {
  const decoder = new FrameDecoder();
  const frames = decoder.push(hex(`31 43 0000001f ${ZLIB_STORED_A_B}`));
  assert.deepEqual(frames, [
    { type: "data", version: 1, seq: 1, pairs: [pair("a", "b")] },
  ]);
  assert.deepEqual(inflateSync(hex(ZLIB_STORED_A_B)), hex(DATA_A_B));
});

test("encodeFrames: frames back to back", () => {
  const frames: Frame[] = [
    { type: "window", version: 2, size: 1 },
    { type: "json", version: 2, seq: 1, payload: Buffer.from("{}") },
  ];
  assert.equal(
    encodeFrames(frames).toString("hex"),
    hex("32 57 00000001 32 4a 00000001 00000002 7b7d").toString("hex"),
  );
});

test("encodeCompressed: level 0 is a stored zlib block of the frames", () => {
  const out = encodeCompressed(1, hex(DATA_A_B), 0);
  assert.equal(
    out.toString("hex"),
    hex(`31 43 0000001f ${ZLIB_STORED_A_B}`).toString("hex"),
  );
});

test("encodeCompressed: the payload inflates to the frames at every level", async () => {
  const inner = Buffer.concat([
    hex("32 57 00000002"),
    hex("32 4a 00000001 00000002 7b7d"),
    hex("32 4a 00000002 00000002 7b7d"),
  ]);
  for (const level of [0, 1, 6, 9]) {
    for (const out of [
      encodeCompressed(2, inner, level),
      await encodeCompressedAsync(2, inner, level),
    ]) {
      assert.equal(out.readUInt8(0), 0x32);
      assert.equal(out.readUInt8(1), 0x43);
      assert.equal(out.readUInt32BE(2), out.length - 6);
      assert.deepEqual(inflateSync(out.subarray(6)), inner);
    }
  }
});

test("encodeCompressed: refuses a level outside 0-9", async () => {
  for (const level of [-1, 10, 1.5, Number.NaN]) {
    const message = `Invalid compression level ${String(level)}: must be an integer from 0 to 9`;
    assert.throws(() => encodeCompressed(1, Buffer.alloc(0), level), {
      name: "ValidationError",
      message,
    });
    await assert.rejects(encodeCompressedAsync(1, Buffer.alloc(0), level), {
      name: "ValidationError",
      message,
    });
  }
});

const REFUSALS: { name: string; frame: unknown; message: string }[] = [
  {
    name: "a data frame without pairs",
    frame: { type: "data", version: 1, seq: 1, pairs: [] },
    message: "Cannot encode frame: data frame has no pairs",
  },
  {
    name: "a data frame in version 2",
    frame: { type: "data", version: 2, seq: 1, pairs: [pair("a", "b")] },
    message:
      "Cannot encode frame: data frame 'D' exists only in version 1, not 2",
  },
  {
    name: "a JSON frame in version 1",
    frame: { type: "json", version: 1, seq: 1, payload: Buffer.alloc(0) },
    message:
      "Cannot encode frame: JSON frame 'J' exists only in version 2, not 1",
  },
  {
    name: "an unknown version",
    frame: { type: "ack", version: 3, seq: 1 },
    message: "Cannot encode frame: unknown version 3",
  },
  {
    name: "an unknown type",
    frame: { type: "ping", version: 2 },
    message: 'Cannot encode frame: unknown type "ping"',
  },
  {
    name: "a sequence past u32",
    frame: { type: "ack", version: 2, seq: 2 ** 32 },
    message: "Cannot encode frame: ack sequence 4294967296 is not a u32",
  },
  {
    name: "a negative window",
    frame: { type: "window", version: 1, size: -1 },
    message: "Cannot encode frame: window size -1 is not a u32",
  },
  {
    name: "a fractional data sequence",
    frame: { type: "data", version: 1, seq: 1.5, pairs: [pair("a", "b")] },
    message: "Cannot encode frame: data sequence 1.5 is not a u32",
  },
];

for (const { name, frame, message } of REFUSALS) {
  test(`encodeFrame: refuses ${name}`, () => {
    assert.throws(
      () => encodeFrame(frame as Frame),
      (err) => {
        assert.ok(err instanceof ProtocolError);
        assert.equal(err.code, "protocol_error");
        assert.equal(err.message, message);
        return true;
      },
    );
  });
}

test("pairsToObject: decodes UTF-8, keeps order, the last duplicate wins", () => {
  const event = pairsToObject([
    pair("line", "héllo"),
    pair("host", "a"),
    pair("host", "b"),
  ]);
  assert.deepEqual(event, { line: "héllo", host: "b" });
  assert.deepEqual(Object.keys(event), ["line", "host"]);
});

test("pairsToObject: invalid UTF-8 becomes U+FFFD in the object only", () => {
  const pairs: [Buffer, Buffer][] = [[Buffer.from("line"), hex("61 ff 62")]];
  assert.deepEqual(pairsToObject(pairs), { line: "a\ufffdb" });
  assert.deepEqual(pairs[0]![1], hex("61 ff 62"));
});

test("pairsToObject: __proto__ stays a key, not a prototype", () => {
  const event = pairsToObject([pair("__proto__", "x")]);
  assert.equal(Object.getPrototypeOf(event), Object.prototype);
  assert.deepEqual(Object.keys(event), ["__proto__"]);
  assert.equal(Object.getOwnPropertyDescriptor(event, "__proto__")?.value, "x");
});

test("objectToPairs: strings as UTF-8, bytes as they are, others as JSON", () => {
  const pairs = objectToPairs({
    line: "héllo",
    raw: hex("ff 00"),
    n: 3,
    ok: true,
    none: null,
    tags: ["a", 1],
    nested: { x: 1 },
    big: 12345678901234567890n,
    skipped: undefined,
    fn: () => 1,
  });
  assert.deepEqual(
    pairs.map(([k, v]) => [k.toString(), v.toString("hex")]),
    [
      ["line", Buffer.from("héllo").toString("hex")],
      ["raw", "ff00"],
      ["n", Buffer.from("3").toString("hex")],
      ["ok", Buffer.from("true").toString("hex")],
      ["none", Buffer.from("null").toString("hex")],
      ["tags", Buffer.from('["a",1]').toString("hex")],
      ["nested", Buffer.from('{"x":1}').toString("hex")],
      ["big", Buffer.from("12345678901234567890").toString("hex")],
    ],
  );
});

test("objectToPairs: a value with no JSON form names its key", () => {
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assert.throws(
    () => objectToPairs({ ok: "x", loop: cycle }),
    (err) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.field, "loop");
      assert.match(err.message, /^Cannot encode event field "loop": /);
      return true;
    },
  );
});

test("objectToPairs and pairsToObject: string events round trip", () => {
  const event = { line: "a=b c", "@timestamp": "2024-01-01T00:00:00Z", "": "" };
  assert.deepEqual(pairsToObject(objectToPairs(event)), event);
});
