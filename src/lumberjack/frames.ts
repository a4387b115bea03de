/**
 * Lumberjack frames, versions 1 and 2: their shapes and their encoders, and
 * the conversion between v1 key/value pairs and event objects. The decoder
 * lives in decoder.ts. See docs/lumberjack.md for the layouts and limits.
 */
import { deflate, deflateSync } from "node:zlib";
import { promisify } from "node:util";

import { errorMessage, ProtocolError, ValidationError } from "../errors.js";
import { setKey } from "../log/data.js";

const deflateAsync = promisify(deflate);

/** Largest value a u32 field (sequence, count, length) can carry. */
export const MAX_U32 = 0xffff_ffff;

/** The first byte of every frame: ASCII `1` or `2`. */
export const VERSION_BYTE = { 1: 0x31, 2: 0x32 } as const;

/** The second byte of every frame. */
export const TYPE_BYTE = {
  window: 0x57, // 'W'
  data: 0x44, // 'D', version 1 only
  json: 0x4a, // 'J', version 2 only
  compressed: 0x43, // 'C'
  ack: 0x41, // 'A'
} as const;

export type Version = 1 | 2;

/**
 * One frame. Keys, values and payloads are byte strings: nothing is decoded
 * or re-encoded on the way through, so bytes (invalid UTF-8 included)
 * survive a decode and an encode unchanged.
 */
export type Frame =
  | { type: "window"; version: Version; size: number }
  | { type: "data"; version: 1; seq: number; pairs: [Buffer, Buffer][] }
  | { type: "json"; version: 2; seq: number; payload: Buffer }
  | { type: "compressed"; version: Version; payload: Buffer }
  | { type: "ack"; version: Version; seq: number };

/**
 * Encodes one frame. All integers are u32 big-endian:
 *
 *   window      version u8, 'W' u8, size u32
 *   data (v1)   '1' u8, 'D' u8, seq u32, pair count u32, then per pair:
 *               key length u32, key bytes, value length u32, value bytes
 *   json (v2)   '2' u8, 'J' u8, seq u32, length u32, JSON bytes
 *   compressed  version u8, 'C' u8, length u32, zlib (RFC 1950) bytes
 *   ack         version u8, 'A' u8, seq u32
 *
 * Throws ProtocolError for a frame the protocol cannot carry: a number
 * that is not a u32, a data frame without pairs (Logstash rejects those),
 * a 'D' frame in version 2 or a 'J' frame in version 1.
 */
export function encodeFrame(frame: Frame): Buffer {
  const version = versionByte(frame.version);
  switch (frame.type) {
    case "window":
      return header6(version, TYPE_BYTE.window, u32("window size", frame.size));
    case "ack":
      return header6(version, TYPE_BYTE.ack, u32("ack sequence", frame.seq));
    case "data":
      return encodeData(frame);
    case "json":
      return encodeJson(frame);
    case "compressed":
      return wrapCompressed(version, frame.payload);
    default:
      throw new ProtocolError(
        `Cannot encode frame: unknown type ${JSON.stringify((frame as { type: unknown }).type)}`,
      );
  }
}

/** Encodes frames back to back, as they would follow each other on the wire. */
export function encodeFrames(frames: readonly Frame[]): Buffer {
  return Buffer.concat(frames.map(encodeFrame));
}

/**
 * One 'C' frame holding the given already-encoded frames, zlib (RFC 1950)
 * at `level` (0-9; 0 stores without compressing). `inner` must be whole
 * frames of the same version; a receiver rejects anything else.
 */
export function encodeCompressed(
  version: Version,
  inner: Buffer,
  level: number,
): Buffer {
  const byte = versionByte(version);
  return wrapCompressed(byte, deflateSync(inner, { level: zlibLevel(level) }));
}

/**
 * The same as encodeCompressed, deflating on the libuv thread pool so a
 * large batch does not block the event loop.
 */
export async function encodeCompressedAsync(
  version: Version,
  inner: Buffer,
  level: number,
): Promise<Buffer> {
  const byte = versionByte(version);
  const payload = await deflateAsync(inner, { level: zlibLevel(level) });
  return wrapCompressed(byte, payload);
}

/**
 * v1 data frame pairs as an object of strings. Keys and values are decoded
 * as UTF-8; an invalid sequence becomes U+FFFD, so the object is lossy for
 * bytes that are not UTF-8. The frame's pairs keep the exact bytes: use
 * them (or `pairsToObject` only for display) where bytes must survive.
 * A key that appears twice keeps its last value, as in Logstash.
 */
export function pairsToObject(
  pairs: [Buffer, Buffer][],
): Record<string, string> {
  const event: Record<string, string> = {};
  for (const [key, value] of pairs) {
    setKey(event, key.toString("utf8"), value.toString("utf8"));
  }
  return event;
}

/**
 * An event object as v1 pairs, in the object's own key order. Strings are
 * sent as UTF-8 and Buffers (or Uint8Arrays) as their bytes; any other
 * value is sent as its JSON text. A key whose value has no JSON form
 * (undefined, a function, a symbol) is left out, as JSON.stringify does;
 * a bigint is sent as its decimal digits. Throws ValidationError naming the
 * key when a value cannot be written as JSON (a cycle, a throwing toJSON).
 */
export function objectToPairs(
  event: Record<string, unknown>,
): [Buffer, Buffer][] {
  const pairs: [Buffer, Buffer][] = [];
  for (const key of Object.keys(event)) {
    const value = valueBytes(key, event[key]);
    if (value !== undefined) pairs.push([Buffer.from(key, "utf8"), value]);
  }
  return pairs;
}

function encodeData(frame: Extract<Frame, { type: "data" }>): Buffer {
  if (frame.version !== 1) {
    throw new ProtocolError(
      `Cannot encode frame: data frame 'D' exists only in version 1, not ${String(frame.version)}`,
    );
  }
  const seq = u32("data sequence", frame.seq);
  const count = frame.pairs.length;
  if (count === 0) {
    throw new ProtocolError("Cannot encode frame: data frame has no pairs");
  }
  u32("pair count", count);

  let size = 10;
  for (const [key, value] of frame.pairs) {
    size +=
      8 + u32("key length", key.length) + u32("value length", value.length);
  }

  const out = Buffer.allocUnsafe(size);
  out[0] = VERSION_BYTE[1];
  out[1] = TYPE_BYTE.data;
  out.writeUInt32BE(seq, 2);
  out.writeUInt32BE(count, 6);
  let at = 10;
  for (const [key, value] of frame.pairs) {
    at = out.writeUInt32BE(key.length, at);
    at += key.copy(out, at);
    at = out.writeUInt32BE(value.length, at);
    at += value.copy(out, at);
  }
  return out;
}

function encodeJson(frame: Extract<Frame, { type: "json" }>): Buffer {
  if (frame.version !== 2) {
    throw new ProtocolError(
      `Cannot encode frame: JSON frame 'J' exists only in version 2, not ${String(frame.version)}`,
    );
  }
  const seq = u32("JSON sequence", frame.seq);
  const length = u32("JSON length", frame.payload.length);
  const out = Buffer.allocUnsafe(10 + length);
  out[0] = VERSION_BYTE[2];
  out[1] = TYPE_BYTE.json;
  out.writeUInt32BE(seq, 2);
  out.writeUInt32BE(length, 6);
  out.set(frame.payload, 10);
  return out;
}

function wrapCompressed(version: number, payload: Buffer): Buffer {
  const length = u32("compressed length", payload.length);
  const out = Buffer.allocUnsafe(6 + length);
  out[0] = version;
  out[1] = TYPE_BYTE.compressed;
  out.writeUInt32BE(length, 2);
  out.set(payload, 6);
  return out;
}

function header6(version: number, type: number, value: number): Buffer {
  const out = Buffer.allocUnsafe(6);
  out[0] = version;
  out[1] = type;
  out.writeUInt32BE(value, 2);
  return out;
}

function versionByte(version: unknown): number {
  if (version === 1 || version === 2) return VERSION_BYTE[version];
  throw new ProtocolError(
    `Cannot encode frame: unknown version ${JSON.stringify(version) ?? String(version)}`,
  );
}

function u32(field: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_U32) {
    throw new ProtocolError(
      `Cannot encode frame: ${field} ${String(value)} is not a u32`,
    );
  }
  return value;
}

function zlibLevel(level: number): number {
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new ValidationError(
      `Invalid compression level ${String(level)}: must be an integer from 0 to 9`,
      "level",
    );
  }
  return level;
}

function valueBytes(key: string, value: unknown): Buffer | undefined {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (value instanceof Uint8Array) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  if (typeof value === "bigint") return Buffer.from(value.toString(), "utf8");

  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new ValidationError(
      `Cannot encode event field ${JSON.stringify(key)}: ${errorMessage(err)}`,
      key,
      { cause: err },
    );
  }
  return text === undefined ? undefined : Buffer.from(text, "utf8");
}
