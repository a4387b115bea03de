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

import { TYPE_BYTE, VERSION_BYTE } from "../lumberjack/frames.js";

/** What every event of one file carries besides its line. */
export interface EventShape {
  host: string;
  fields: Readonly<Record<string, string>>;
  /** Adds `file` (this path) and `offset` (after the line) when set. */
  file?: string;
}

/** One line of a batch and the file it came from. */
export interface LineEvent {
  bytes: Buffer;
  /** Byte offset just after the line's newline. */
  endOffset: number;
  template: EventTemplate;
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
// Bytes JSON requires escaped inside a string; seen through latin1 text.
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

/** A batch's lines as Lumberjack event frames. */
export class LineEvents implements EventFrames {
  readonly #events: readonly LineEvent[];

  constructor(events: readonly LineEvent[]) {
    this.#events = events;
  }

  get count(): number {
    return this.#events.length;
  }

  encode(version: Version, firstSeq: number): Buffer {
    return version === 1 ? this.#encodeV1(firstSeq) : this.#encodeV2(firstSeq);
  }

  /**
   * '2' 'J' seq u32, length u32, then
   * `{"line":"<line>"<tail>[,"offset":N]}`.
   */
  #encodeV2(firstSeq: number): Buffer {
    const lines = this.#events.map((e) => jsonStringBody(e.bytes));
    const offsets = this.#events.map((e) =>
      e.template.withOffset ? String(e.endOffset) : "",
    );
    let size = 0;
    this.#events.forEach((e, i) => {
      const offset = offsets[i] as string;
      size += 10 + JSON_HEAD.length + (lines[i] as Buffer).length + 1;
      size += e.template.jsonTail.length + 1;
      if (offset !== "") size += JSON_OFFSET.length + offset.length;
    });
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    this.#events.forEach((e, i) => {
      const offset = offsets[i] as string;
      const start = at;
      out[at] = VERSION_BYTE[2];
      out[at + 1] = TYPE_BYTE.json;
      out.writeUInt32BE(firstSeq + i, at + 2);
      at += 10;
      at += JSON_HEAD.copy(out, at);
      at += (lines[i] as Buffer).copy(out, at);
      out[at++] = 0x22; // closing quote of the line
      at += e.template.jsonTail.copy(out, at);
      if (offset !== "") {
        at += JSON_OFFSET.copy(out, at);
        at += out.write(offset, at, "latin1");
      }
      out[at++] = 0x7d; // }
      out.writeUInt32BE(at - start - 10, start + 6);
    });
    return out;
  }

  /**
   * '1' 'D' seq u32, pair count u32, then per pair key length u32, key,
   * value length u32, value: line, the constant pairs, [offset].
   */
  #encodeV1(firstSeq: number): Buffer {
    const offsets = this.#events.map((e) =>
      e.template.withOffset ? Buffer.from(String(e.endOffset)) : undefined,
    );
    let size = 0;
    this.#events.forEach((e, i) => {
      size += 10 + 8 + LINE_KEY.length + e.bytes.length;
      size += e.template.pairs.length;
      const offset = offsets[i];
      if (offset !== undefined) size += 8 + OFFSET_KEY.length + offset.length;
    });
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    this.#events.forEach((e, i) => {
      const offset = offsets[i];
      out[at] = VERSION_BYTE[1];
      out[at + 1] = TYPE_BYTE.data;
      out.writeUInt32BE(firstSeq + i, at + 2);
      const pairs = 1 + e.template.pairCount + (offset === undefined ? 0 : 1);
      out.writeUInt32BE(pairs, at + 6);
      at += 10;
      at = writePair(out, at, LINE_KEY, e.bytes);
      at += e.template.pairs.copy(out, at);
      if (offset !== undefined) at = writePair(out, at, OFFSET_KEY, offset);
    });
    return out;
  }
}

/** The bytes of a JSON string's body (no quotes) for raw line bytes. */
export function jsonStringBody(bytes: Buffer): Buffer {
  // latin1 maps each byte to one char, so the test sees every byte.
  if (!NEEDS_ESCAPE.test(bytes.toString("latin1"))) return bytes;
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b >= 0x20 && b !== 0x22 && b !== 0x5c) continue;
    parts.push(bytes.subarray(from, i), Buffer.from(escapeByte(b), "latin1"));
    from = i + 1;
  }
  parts.push(bytes.subarray(from));
  return Buffer.concat(parts);
}

function escapeByte(b: number): string {
  switch (b) {
    case 0x22:
      return '\\"';
    case 0x5c:
      return "\\\\";
    case 0x0a:
      return "\\n";
    case 0x0d:
      return "\\r";
    case 0x09:
      return "\\t";
    default:
      return `\\u${b.toString(16).padStart(4, "0")}`;
  }
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
