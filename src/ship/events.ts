/**
 * The shipper's events: one per line, `{ line, host, ...fields }` plus
 * `file` and `offset` when a group asks for them. Lines stay bytes from
 * the file to the wire: each event frame is written straight into one
 * buffer per batch, without building objects or decoding text, so invalid
 * UTF-8 reaches the server byte for byte (v1 values are raw bytes; in v2
 * JSON only `"`, `\` and control bytes are escaped, other bytes are copied
 * as they are).
 */
import type { EventFrames } from "../lumberjack/batch.js";
import type { Version } from "../lumberjack/frames.js";
import type { ReadLine } from "./reader.js";

import { TYPE_BYTE, VERSION_BYTE } from "../lumberjack/frames.js";

/** What every event of one file carries besides its line. */
export interface EventShape {
  host: string;
  fields: Readonly<Record<string, string>>;
  /** Adds `file` (this path) and `offset` (after the line) when set. */
  file?: string;
}

/** Lines of one file in a batch, all carrying the same template. */
export interface LineSegment {
  template: EventTemplate;
  lines: readonly ReadLine[];
}

/** An EventShape encoded once, reused for every line of its file. */
export class EventTemplate {
  /** v2: what follows the line's JSON string, without the closing brace. */
  readonly jsonTail: Buffer;
  /** v1: the constant pairs, encoded. */
  readonly pairs: Buffer;
  readonly pairCount: number;
  readonly withOffset: boolean;

  constructor(shape: EventShape) {
    const constant: [string, string][] = [
      ["host", shape.host],
      ...Object.entries(shape.fields),
    ];
    if (shape.file !== undefined) constant.push(["file", shape.file]);
    this.withOffset = shape.file !== undefined;
    this.jsonTail = Buffer.from(
      constant
        .map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`)
        .join(""),
    );
    this.pairs = Buffer.concat(
      constant.map(([k, v]) => pairBytes(Buffer.from(k), Buffer.from(v))),
    );
    this.pairCount = constant.length;
  }
}

const LINE_KEY = Buffer.from("line");
const OFFSET_KEY = Buffer.from("offset");
const JSON_HEAD = Buffer.from('{"line":"');
const JSON_OFFSET = Buffer.from(',"offset":');
const V2_JSON = (VERSION_BYTE[2] << 8) | TYPE_BYTE.json;
const V1_DATA = (VERSION_BYTE[1] << 8) | TYPE_BYTE.data;

/**
 * A batch's lines as Lumberjack event frames. The encoders are the hot
 * path of the shipper: one pass sizes the batch, one writes it, with no
 * allocation per line unless a line needs JSON escapes.
 */
export class LineEvents implements EventFrames {
  readonly count: number;
  readonly #segments: readonly LineSegment[];

  constructor(segments: readonly LineSegment[]) {
    this.#segments = segments;
    let count = 0;
    for (const segment of segments) count += segment.lines.length;
    this.count = count;
  }

  encode(version: Version, firstSeq: number): Buffer {
    return version === 1 ? this.#encodeV1(firstSeq) : this.#encodeV2(firstSeq);
  }

  /**
   * '2' 'J' seq u32, length u32, then
   * `{"line":"<line>"<tail>[,"offset":N]}`.
   */
  #encodeV2(firstSeq: number): Buffer {
    // Sized as if nothing needed escaping; grown in the rare case it must.
    let size = 0;
    for (const { template, lines } of this.#segments) {
      const fixed = 10 + JSON_HEAD.length + 2 + template.jsonTail.length;
      const offsetKey = template.withOffset ? JSON_OFFSET.length : 0;
      for (const line of lines) {
        size += fixed + line.bytes.length;
        if (offsetKey !== 0) size += offsetKey + digits(line.endOffset);
      }
    }
    let out: Buffer = Buffer.allocUnsafe(size + (size >> 3));
    let at = 0;
    let seq = firstSeq;
    for (const { template, lines } of this.#segments) {
      const tail = template.jsonTail;
      const fixed = 10 + JSON_HEAD.length + 2 + tail.length + 32;
      for (const line of lines) {
        const bytes = line.bytes;
        // Room for this event even if every byte became \u00XX.
        const worst = at + fixed + bytes.length * 6;
        if (worst > out.length) out = grow(out, at, worst);
        const start = at;
        out.writeUInt16BE(V2_JSON, at);
        out.writeUInt32BE(seq++, at + 2);
        at += 10;
        out.set(JSON_HEAD, at);
        at += JSON_HEAD.length;
        // Copy, then escape from the first byte that needs it, if any.
        out.set(bytes, at);
        const from = firstEscape(bytes);
        at = from < 0 ? at + bytes.length : writeEscaped(out, at, bytes, from);
        out[at++] = 0x22; // closing quote of the line
        out.set(tail, at);
        at += tail.length;
        if (template.withOffset) {
          out.set(JSON_OFFSET, at);
          at = writeDecimal(out, at + JSON_OFFSET.length, line.endOffset);
        }
        out[at++] = 0x7d; // }
        out.writeUInt32BE(at - start - 10, start + 6);
      }
    }
    return out.subarray(0, at);
  }

  /**
   * '1' 'D' seq u32, pair count u32, then per pair key length u32, key,
   * value length u32, value: line, the constant pairs, [offset].
   */
  #encodeV1(firstSeq: number): Buffer {
    let size = 0;
    for (const { template, lines } of this.#segments) {
      const fixed = 18 + LINE_KEY.length + template.pairs.length;
      const offsetKey = template.withOffset ? 8 + OFFSET_KEY.length : 0;
      for (const line of lines) {
        size += fixed + line.bytes.length;
        if (offsetKey !== 0) size += offsetKey + digits(line.endOffset);
      }
    }
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    let seq = firstSeq;
    for (const { template, lines } of this.#segments) {
      const pairs = 1 + template.pairCount + (template.withOffset ? 1 : 0);
      for (const line of lines) {
        out.writeUInt16BE(V1_DATA, at);
        out.writeUInt32BE(seq++, at + 2);
        out.writeUInt32BE(pairs, at + 6);
        at = writePair(out, at + 10, LINE_KEY, line.bytes);
        out.set(template.pairs, at);
        at += template.pairs.length;
        if (template.withOffset) {
          out.writeUInt32BE(OFFSET_KEY.length, at);
          out.set(OFFSET_KEY, at + 4);
          at += 4 + OFFSET_KEY.length;
          const n = digits(line.endOffset);
          out.writeUInt32BE(n, at);
          at = writeDecimal(out, at + 4, line.endOffset);
        }
      }
    }
    return out;
  }
}

// How many bytes JSON's escape of each byte adds: 1 for `"`, `\` and the
// controls with a short form (\b \t \n \f \r), 5 for other controls
// (\u00XX), 0 for every other byte (UTF-8 or not, copied as it is).
const ESCAPE_EXTRA = new Uint8Array(256);
const SHORT_ESCAPES: Record<number, number> = {
  0x08: 0x62, // b
  0x09: 0x74, // t
  0x0a: 0x6e, // n
  0x0c: 0x66, // f
  0x0d: 0x72, // r
  0x22: 0x22,
  0x5c: 0x5c,
};
for (let b = 0; b < 0x20; b++) ESCAPE_EXTRA[b] = 5;
for (const b of Object.keys(SHORT_ESCAPES)) ESCAPE_EXTRA[Number(b)] = 1;
const HEX = Buffer.from("0123456789abcdef");

function escapeExtra(bytes: Buffer): number {
  let extra = 0;
  for (let i = 0; i < bytes.length; i++) {
    extra += ESCAPE_EXTRA[bytes[i] as number] as number;
  }
  return extra;
}

// Index of the first byte JSON needs escaped, or -1.
function firstEscape(bytes: Buffer): number {
  for (let i = 0; i < bytes.length; i++) {
    if (ESCAPE_EXTRA[bytes[i] as number] !== 0) return i;
  }
  return -1;
}

/**
 * Writes `bytes` JSON-escaped at `at`, where its first `from` bytes are
 * already in place (and need no escape); returns the end.
 */
function writeEscaped(
  out: Buffer,
  at: number,
  bytes: Buffer,
  from = 0,
): number {
  at += from;
  for (let i = from; i < bytes.length; i++) {
    const b = bytes[i] as number;
    const more = ESCAPE_EXTRA[b] as number;
    if (more === 0) {
      out[at++] = b;
    } else if (more === 1) {
      out[at++] = 0x5c;
      out[at++] = SHORT_ESCAPES[b] as number;
    } else {
      out[at++] = 0x5c; // \u00XX
      out[at++] = 0x75;
      out[at++] = 0x30;
      out[at++] = 0x30;
      out[at++] = HEX[b >> 4] as number;
      out[at++] = HEX[b & 15] as number;
    }
  }
  return at;
}

// A copy of out's first `used` bytes in a buffer of at least `need` bytes.
function grow(out: Buffer, used: number, need: number): Buffer {
  const bigger = Buffer.allocUnsafe(Math.max(need, out.length * 2));
  out.copy(bigger, 0, 0, used);
  return bigger;
}

function digits(n: number): number {
  let count = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    count++;
  }
  return count;
}

// Writes a non-negative whole number in decimal; returns the end.
function writeDecimal(out: Buffer, at: number, n: number): number {
  const end = at + digits(n);
  let i = end;
  do {
    out[--i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  return end;
}

/** The bytes of a JSON string's body (no quotes) for raw line bytes. */
export function jsonStringBody(bytes: Buffer): Buffer {
  const extra = escapeExtra(bytes);
  if (extra === 0) return bytes;
  const out = Buffer.allocUnsafe(bytes.length + extra);
  writeEscaped(out, 0, bytes);
  return out;
}

function pairBytes(key: Buffer, value: Buffer): Buffer {
  const out = Buffer.allocUnsafe(8 + key.length + value.length);
  writePair(out, 0, key, value);
  return out;
}

function writePair(
  out: Buffer,
  at: number,
  key: Buffer,
  value: Buffer,
): number {
  out.writeUInt32BE(key.length, at);
  at += 4 + key.copy(out, at + 4);
  out.writeUInt32BE(value.length, at);
  return at + 4 + value.copy(out, at + 4);
}
