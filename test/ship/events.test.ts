import assert from "node:assert/strict";
import { test } from "node:test";

import fc from "fast-check";

import { FrameDecoder } from "../../src/lumberjack/decoder.js";
import { encodeFrame, type Frame } from "../../src/lumberjack/frames.js";
import {
  EventTemplate,
  jsonStringBody,
  LineEvents,
} from "../../src/ship/events.js";

const plain = new EventTemplate({ host: "h1", fields: { type: "syslog" } });
const withFile = new EventTemplate({
  host: "h1",
  fields: {},
  file: "/var/log/a.log",
});

function decode(bytes: Buffer): Frame[] {
  const decoder = new FrameDecoder();
  const frames = decoder.push(bytes);
  assert.equal(decoder.buffered, 0);
  return frames;
}

test("events: v2 frames are exactly what encodeFrame writes for the same JSON", () => {
  const events = new LineEvents([
    { template: plain, lines: [{ bytes: Buffer.from("hello"), endOffset: 6 }] },
    {
      template: withFile,
      lines: [{ bytes: Buffer.from('a "q" \\ \t\n\x01'), endOffset: 20 }],
    },
  ]);
  const expected = Buffer.concat([
    encodeFrame({
      type: "json",
      version: 2,
      seq: 7,
      payload: Buffer.from('{"line":"hello","host":"h1","type":"syslog"}'),
    }),
    encodeFrame({
      type: "json",
      version: 2,
      seq: 8,
      payload: Buffer.from(
        '{"line":"a \\"q\\" \\\\ \\t\\n\\u0001","host":"h1",' +
          '"file":"/var/log/a.log","offset":20}',
      ),
    }),
  ]);
  assert.deepEqual(events.encode(2, 7), expected);
  assert.equal(events.count, 2);
});

test("events: v1 frames carry line, constant pairs and offset as bytes", () => {
  const bytes = Buffer.from([0x61, 0xff, 0xfe, 0x62]);
  const events = new LineEvents([
    { template: withFile, lines: [{ bytes, endOffset: 5 }] },
    { template: plain, lines: [{ bytes: Buffer.from(""), endOffset: 6 }] },
  ]);
  const b = (s: string) => Buffer.from(s);
  assert.deepEqual(decode(events.encode(1, 1)), [
    {
      type: "data",
      version: 1,
      seq: 1,
      pairs: [
        [b("line"), bytes],
        [b("host"), b("h1")],
        [b("file"), b("/var/log/a.log")],
        [b("offset"), b("5")],
      ],
    },
    {
      type: "data",
      version: 1,
      seq: 2,
      pairs: [
        [b("line"), b("")],
        [b("host"), b("h1")],
        [b("type"), b("syslog")],
      ],
    },
  ]);
});

test("events: invalid UTF-8 goes into v2 JSON byte for byte", () => {
  const bytes = Buffer.from([0x78, 0xc3, 0x28, 0xff, 0x22]);
  const [frame] = decode(
    new LineEvents([
      { template: plain, lines: [{ bytes, endOffset: 5 }] },
    ]).encode(2, 1),
  );
  assert.ok(frame?.type === "json");
  assert.deepEqual(
    frame.payload,
    Buffer.concat([
      Buffer.from('{"line":"x'),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from('\\"","host":"h1","type":"syslog"}'),
    ]),
  );
});

test("events: any valid UTF-8 line survives v2 JSON.parse unchanged", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (line) => {
      const body = jsonStringBody(Buffer.from(line, "utf8"));
      assert.equal(JSON.parse(`"${body.toString("utf8")}"`), line);
    }),
    { numRuns: 500 },
  );
});

test("events: offsets of any size are written in decimal, in v1 and v2", () => {
  for (const endOffset of [0, 9, 10, 99, 100, 12345, 2 ** 40 + 7]) {
    const events = new LineEvents([
      { template: withFile, lines: [{ bytes: Buffer.from("x"), endOffset }] },
    ]);
    const [v2] = decode(events.encode(2, 1));
    assert.ok(v2?.type === "json");
    const event = JSON.parse(v2.payload.toString()) as { offset: number };
    assert.equal(event.offset, endOffset);
    const [v1] = decode(events.encode(1, 1));
    assert.ok(v1?.type === "data");
    assert.equal(v1.pairs[3]?.[1].toString(), String(endOffset));
  }
});

test("events: v2 frames match a line-by-line encoding for any bytes, escapes and all", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 40 }),
      (raw) => {
        const lines = raw.map((bytes, i) => ({
          bytes: Buffer.from(bytes),
          endOffset: i * 1000,
        }));
        const frames = decode(
          new LineEvents([{ template: withFile, lines }]).encode(2, 1),
        );
        assert.deepEqual(
          frames.map((f) => (f.type === "json" ? f.payload : undefined)),
          lines.map((line) =>
            Buffer.concat([
              Buffer.from('{"line":"'),
              jsonStringBody(line.bytes),
              Buffer.from(
                `","host":"h1","file":"/var/log/a.log","offset":${line.endOffset}}`,
              ),
            ]),
          ),
        );
      },
    ),
    { numRuns: 300 },
  );
});
