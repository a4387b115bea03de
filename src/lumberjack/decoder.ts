/**
 * The streaming Lumberjack frame decoder, versions 1 and 2. Bytes arrive in
 * any split (one at a time included); complete frames come out, compressed
 * frames expanded in place. Every limit of limits.ts is enforced before the
 * bytes it guards are buffered or inflated.
 */
import { inflateSync } from "node:zlib";

import { ProtocolError } from "../errors.js";
import { TYPE_BYTE, VERSION_BYTE, type Frame, type Version } from "./frames.js";
import {
  resolveLimits,
  type DecoderLimits,
  type ResolvedLimits,
} from "./limits.js";

export type { DecoderLimits } from "./limits.js";

/** Internal storage above this size is let go once it is empty. */
const KEEP_BUFFER_BYTES = 1024 * 1024;
const MIN_BUFFER_BYTES = 4096;
const EMPTY = Buffer.alloc(0);

/**
 * How far the decoder has read into the frame at the head of its buffer,
 * kept between pushes so a frame fed in small pieces is measured once.
 */
interface Scan {
  /** The whole frame's length once known, else 0. */
  length: number;
  /** Data frames: the end of the last key or value length walked past. */
  pos: number;
  /** Data frames: key and value fields still to walk. */
  fieldsLeft: number;
}

/** Frames produced by one top-level compressed frame so far. */
interface Expansion {
  frames: number;
}

/**
 * Turns a byte stream into frames. Not tied to a socket: feed it with
 * `push` and act on what comes back. The receiver and the client each keep
 * one per connection.
 */
export class FrameDecoder {
  readonly #limits: ResolvedLimits;
  #buf: Buffer = EMPTY;
  #start = 0;
  #end = 0;
  #scan: Scan = newScan();
  #failed: ProtocolError | undefined;

  /** Throws ValidationError for a limit that is not a usable number. */
  constructor(limits?: DecoderLimits) {
    this.#limits = resolveLimits(limits);
  }

  /**
   * Feeds bytes; returns every frame they complete, in order, compressed
   * frames replaced by the frames they hold. Returned Buffers are never
   * reused by the decoder; they may be views of `chunk`.
   *
   * Throws ProtocolError on any violation of the protocol or the limits.
   * Frames completed earlier in the same call are then dropped, and the
   * decoder is unusable: every later push throws the same error (callers
   * close the connection).
   */
  push(chunk: Buffer): Frame[] {
    if (this.#failed) throw this.#failed;
    try {
      return this.#push(chunk);
    } catch (err) {
      this.#failed =
        err instanceof ProtocolError
          ? err
          : new ProtocolError("Cannot decode frame: decoder failed", {
              cause: err,
            });
      this.#buf = EMPTY;
      this.#start = this.#end = 0;
      throw this.#failed;
    }
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  #push(chunk: Buffer): Frame[] {
    // With nothing held, read straight from the chunk; copy only the tail.
    const direct = this.#start === this.#end;
    if (!direct) this.#append(chunk);
    const buf = direct ? chunk : this.#buf;
    let start = direct ? 0 : this.#start;
    const end = direct ? chunk.length : this.#end;

    const frames: Frame[] = [];
    for (;;) {
      const length = measure(buf, start, end, this.#limits, this.#scan, 0);
      if (length === 0 || length > end - start) break;
      const bytes = buf.subarray(start, start + length);
      start += length;
      this.#scan = newScan();
      // The internal buffer is reused, so frames cut from it get a copy;
      // a compressed frame's bytes never escape (its inflated copy does).
      const own = direct || bytes[1] === TYPE_BYTE.compressed;
      decodeOne(own ? bytes : Buffer.from(bytes), this.#limits, 0, frames);
    }

    if (direct) {
      this.#start = this.#end = 0;
      if (start < end) this.#append(chunk.subarray(start, end));
    } else if (start === end) {
      this.#start = this.#end = 0;
      if (this.#buf.length > KEEP_BUFFER_BYTES) this.#buf = EMPTY;
    } else {
      this.#start = start;
    }
    return frames;
  }

  /** Adds bytes after those held, growing or compacting the storage. */
  #append(chunk: Buffer): void {
    const held = this.#end - this.#start;
    const needed = held + chunk.length;
    if (needed > this.#buf.length) {
      // Doubling keeps appends linear. Not sized from a frame's announced
      // length: a peer could make every connection reserve the largest
      // frame by sending six bytes.
      const size = Math.max(needed, this.#buf.length * 2, MIN_BUFFER_BYTES);
      const grown = Buffer.allocUnsafe(size);
      this.#buf.copy(grown, 0, this.#start, this.#end);
      this.#buf = grown;
      this.#start = 0;
      this.#end = held;
    } else if (this.#end + chunk.length > this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = held;
    }
    chunk.copy(this.#buf, this.#end);
    this.#end += chunk.length;
  }
}

function newScan(): Scan {
  return { length: 0, pos: 0, fieldsLeft: 0 };
}

/**
 * The length of the frame starting at `start`, or 0 while too few bytes
 * have arrived to know it. Validates the header and every length field as
 * soon as it is readable, so an oversized frame is refused before it is
 * buffered. `depth` counts the compressed frames around this one.
 */
function measure(
  buf: Buffer,
  start: number,
  end: number,
  limits: ResolvedLimits,
  scan: Scan,
  depth: number,
): number {
  if (scan.length > 0) return scan.length;
  const available = end - start;
  if (available < 1) return 0;
  const version = buf[start]!;
  if (version !== VERSION_BYTE[1] && version !== VERSION_BYTE[2]) {
    throw invalid(`unknown version ${hex(version)}`);
  }
  if (available < 2) return 0;
  const type = buf[start + 1]!;
  const v = versionOf(version);

  switch (type) {
    case TYPE_BYTE.window:
    case TYPE_BYTE.ack:
      return (scan.length = 6);
    case TYPE_BYTE.json: {
      if (v !== 2) throw invalid("JSON frame 'J' is not allowed in version 1");
      if (available < 10) return 0;
      const length = 10 + buf.readUInt32BE(start + 6);
      return (scan.length = checkFrameBytes("J", length, limits, false));
    }
    case TYPE_BYTE.compressed: {
      if (depth + 1 > limits.maxNesting) {
        throw new ProtocolError(
          `Invalid compressed frame: nesting depth ${depth + 1} is over the limit of ${limits.maxNesting}`,
        );
      }
      if (available < 6) return 0;
      const length = 6 + buf.readUInt32BE(start + 2);
      return (scan.length = checkFrameBytes("C", length, limits, false));
    }
    case TYPE_BYTE.data:
      if (v !== 1) throw invalid("data frame 'D' is not allowed in version 2");
      return measureData(buf, start, available, limits, scan);
    default:
      throw invalid(`unknown type ${hex(type)} after version ${v}`);
  }
}

/** Walks a data frame's key and value lengths as far as they have arrived. */
function measureData(
  buf: Buffer,
  start: number,
  available: number,
  limits: ResolvedLimits,
  scan: Scan,
): number {
  if (scan.pos === 0) {
    if (available < 10) return 0;
    const count = buf.readUInt32BE(start + 6);
    if (count === 0) throw invalid("'D' frame has zero pairs");
    if (count > limits.maxPairs) {
      throw invalid(
        `'D' frame has ${count} pairs, over the limit of ${limits.maxPairs}`,
      );
    }
    scan.pos = 10;
    scan.fieldsLeft = count * 2;
    checkFrameBytes("D", scan.pos + 4 * scan.fieldsLeft, limits, true);
  }

  while (scan.fieldsLeft > 0) {
    if (available < scan.pos + 4) return 0;
    const fieldBytes = buf.readUInt32BE(start + scan.pos);
    scan.pos += 4 + fieldBytes;
    scan.fieldsLeft--;
    // The remaining length fields are part of the frame too.
    const atLeast = scan.pos + 4 * scan.fieldsLeft;
    checkFrameBytes("D", atLeast, limits, scan.fieldsLeft > 0);
  }
  return (scan.length = scan.pos);
}

/** Decodes one complete frame, known to be well formed by `measure`. */
function decodeOne(
  bytes: Buffer,
  limits: ResolvedLimits,
  depth: number,
  out: Frame[],
  expansion?: Expansion,
): void {
  const version = versionOf(bytes[0]!);
  switch (bytes[1]) {
    case TYPE_BYTE.window: {
      const size = bytes.readUInt32BE(2);
      if (size > limits.maxWindow) {
        throw invalid(
          `window size ${size} is over the limit of ${limits.maxWindow}`,
        );
      }
      out.push({ type: "window", version, size });
      break;
    }
    case TYPE_BYTE.ack:
      out.push({ type: "ack", version, seq: bytes.readUInt32BE(2) });
      break;
    case TYPE_BYTE.json:
      out.push({
        type: "json",
        version: 2,
        seq: bytes.readUInt32BE(2),
        payload: bytes.subarray(10),
      });
      break;
    case TYPE_BYTE.data:
      out.push(decodeData(bytes));
      break;
    case TYPE_BYTE.compressed: {
      const inflated = inflate(bytes.subarray(6), limits);
      decodeRun(
        inflated,
        version,
        limits,
        depth + 1,
        out,
        expansion ?? {
          frames: 0,
        },
      );
      return;
    }
  }
  if (expansion && ++expansion.frames > limits.maxCompressedFrames) {
    throw new ProtocolError(
      `Invalid compressed frame: expands to more than ${limits.maxCompressedFrames} frames`,
    );
  }
}

function decodeData(bytes: Buffer): Frame {
  const seq = bytes.readUInt32BE(2);
  const count = bytes.readUInt32BE(6);
  const pairs = new Array<[Buffer, Buffer]>(count);
  let at = 10;
  for (let i = 0; i < count; i++) {
    const keyEnd = at + 4 + bytes.readUInt32BE(at);
    const key = bytes.subarray(at + 4, keyEnd);
    const valueEnd = keyEnd + 4 + bytes.readUInt32BE(keyEnd);
    pairs[i] = [key, bytes.subarray(keyEnd + 4, valueEnd)];
    at = valueEnd;
  }
  return { type: "data", version: 1, seq, pairs };
}

/** Decodes the inflated content of a compressed frame: whole frames only. */
function decodeRun(
  content: Buffer,
  version: Version,
  limits: ResolvedLimits,
  depth: number,
  out: Frame[],
  expansion: Expansion,
): void {
  let start = 0;
  while (start < content.length) {
    const scan = newScan();
    const length = measure(content, start, content.length, limits, scan, depth);
    if (length === 0 || length > content.length - start) {
      throw new ProtocolError(
        `Invalid compressed frame: inflated content ends mid-frame, ${content.length - start} bytes left over`,
      );
    }
    const inner = versionOf(content[start]!);
    if (inner !== version) {
      throw new ProtocolError(
        `Invalid compressed frame: version ${inner} frame inside a version ${version} compressed frame`,
      );
    }
    decodeOne(
      content.subarray(start, start + length),
      limits,
      depth,
      out,
      expansion,
    );
    start += length;
  }
}

/** Inflates a zlib stream, stopping as soon as the output passes the cap. */
function inflate(payload: Buffer, limits: ResolvedLimits): Buffer {
  let result: { buffer: Buffer; engine: { bytesWritten: number } };
  try {
    // `info` hands back the engine, whose bytesWritten is the input used.
    result = inflateSync(payload, {
      maxOutputLength: limits.maxInflatedBytes,
      info: true,
    }) as unknown as typeof result;
  } catch (err) {
    if ((err as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new ProtocolError(
        `Invalid compressed frame: inflated content is over the limit of ${limits.maxInflatedBytes} bytes`,
        { cause: err },
      );
    }
    throw new ProtocolError(
      `Invalid compressed frame: zlib data does not inflate (${(err as Error).message})`,
      { cause: err },
    );
  }
  const extra = payload.length - result.engine.bytesWritten;
  if (extra > 0) {
    throw new ProtocolError(
      `Invalid compressed frame: ${extra} bytes after the end of the zlib stream`,
    );
  }
  return result.buffer;
}

/** Refuses a frame (or, with atLeast, a frame at least this long) too big. */
function checkFrameBytes(
  type: string,
  length: number,
  limits: ResolvedLimits,
  atLeast: boolean,
): number {
  if (length > limits.maxFrameBytes) {
    const size = atLeast ? `at least ${length}` : `${length}`;
    throw invalid(
      `'${type}' frame of ${size} bytes is over the limit of ${limits.maxFrameBytes}`,
    );
  }
  return length;
}

function versionOf(byte: number): Version {
  return byte === VERSION_BYTE[1] ? 1 : 2;
}

function invalid(why: string): ProtocolError {
  return new ProtocolError(`Invalid frame: ${why}`);
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, "0")}`;
}
