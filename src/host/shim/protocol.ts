/**
 * The wire between the daemon and a job's shim, on the shim's Unix
 * socket. Every frame is a type byte, a u32 big-endian payload length and
 * the payload. A connection starts with the daemon's ROLE frame: a
 * control connection hears HELLO, then OUTPUT positions and the EXIT; a
 * stdin connection carries the job's input, apart from the control
 * connection so that a job that does not read its stdin never holds up a
 * signal or a resize.
 */
import type { OutputPosition } from "../output.js";
import type { ExitInfo } from "../state.js";

/** Largest payload either side accepts. */
export const MAX_FRAME_BYTES = 1024 * 1024;
const HEADER_BYTES = 5;

export const FRAME = {
  // shim -> daemon
  hello: 1,
  output: 2,
  exit: 3,
  /** A line the shim logged (JSON), for the daemon's own log. */
  log: 4,
  // daemon -> shim
  role: 10,
  signal: 11,
  stdin: 12,
  stdinClose: 13,
  resize: 14,
  exitAck: 15,
} as const;

export type FrameType = (typeof FRAME)[keyof typeof FRAME];

export type Role = "control" | "stdin";

/** What the shim says first on a control connection. */
export interface Hello {
  pid: number;
  shimPid: number;
  /** When the job was spawned (ISO 8601). */
  startedAt: string;
  position: OutputPosition;
  droppedBytes: number;
}

/** How the job ended, as the shim records it in exit.json. */
export interface ShimExit extends ExitInfo {
  endedAt: string;
  position: OutputPosition;
  droppedBytes: number;
}

export interface Frame {
  type: number;
  payload: Buffer;
}

/** One frame's bytes. */
export function encodeFrame(
  type: FrameType,
  payload: Buffer | string = "",
): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  frame.writeUInt8(type, 0);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, HEADER_BYTES);
  return frame;
}

export function encodeJson(type: FrameType, value: unknown): Buffer {
  return encodeFrame(type, JSON.stringify(value));
}

/** An OUTPUT frame: the three positions as doubles (exact below 2^53). */
export function encodePosition(
  position: OutputPosition,
  droppedBytes: number,
): Buffer {
  const payload = Buffer.allocUnsafe(32);
  payload.writeDoubleBE(position.stdout, 0);
  payload.writeDoubleBE(position.stderr, 8);
  payload.writeDoubleBE(position.index, 16);
  payload.writeDoubleBE(droppedBytes, 24);
  return encodeFrame(FRAME.output, payload);
}

export function decodePosition(payload: Buffer): {
  position: OutputPosition;
  droppedBytes: number;
} {
  if (payload.length !== 32)
    throw new Error("Invalid OUTPUT frame: not 32 bytes");
  return {
    position: {
      stdout: payload.readDoubleBE(0),
      stderr: payload.readDoubleBE(8),
      index: payload.readDoubleBE(16),
    },
    droppedBytes: payload.readDoubleBE(24),
  };
}

export function encodeResize(rows: number, cols: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt16BE(rows, 0);
  payload.writeUInt16BE(cols, 2);
  return encodeFrame(FRAME.resize, payload);
}

/**
 * Splits a byte stream into frames. Throws on a frame over the limit,
 * which ends the connection: the peer is not lorne.
 */
export class FrameReader {
  #pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.#pending =
      this.#pending.length === 0
        ? chunk
        : Buffer.concat([this.#pending, chunk]);
    const frames: Frame[] = [];
    let at = 0;
    while (this.#pending.length - at >= HEADER_BYTES) {
      const length = this.#pending.readUInt32BE(at + 1);
      if (length > MAX_FRAME_BYTES) {
        throw new Error(
          `Invalid frame: ${length} bytes, more than ${MAX_FRAME_BYTES}`,
        );
      }
      if (this.#pending.length - at < HEADER_BYTES + length) break;
      const type = this.#pending.readUInt8(at);
      const start = at + HEADER_BYTES;
      // A copy: the caller may keep the payload past the next push.
      frames.push({
        type,
        payload: Buffer.from(this.#pending.subarray(start, start + length)),
      });
      at = start + length;
    }
    this.#pending = this.#pending.subarray(at);
    if (this.#pending.length > 0) this.#pending = Buffer.from(this.#pending);
    return frames;
  }
}

/** Parses a JSON payload; throws naming the frame. */
export function parseJson<T>(payload: Buffer, what: string): T {
  try {
    return JSON.parse(payload.toString("utf8")) as T;
  } catch {
    throw new Error(`Invalid ${what} frame: not JSON`);
  }
}
