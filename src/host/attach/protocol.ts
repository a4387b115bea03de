/**
 * The attach wire protocol: binary WebSocket messages, one frame each, the
 * first byte its type. See docs/attach.md.
 *
 * Server to client:
 *   0x01 waiting                      the job does not exist yet
 *   0x02 success                      attached; frames follow
 *   0x03 error   utf8 message         attach failed; the socket closes
 *   0x04 data    u8 stream, bytes     output (stream 1 stdout, 2 stderr)
 *   0x05 eof     u8 stream            that stream has ended
 *   0x06 exit    utf8 JSON            {"status","exit_status","signal"}
 *
 * Client to server:
 *   0x10 stdin        bytes           written to the job's stdin
 *   0x11 stdin_close                  closes the job's stdin
 *   0x12 signal       utf8 name       e.g. "SIGINT"
 *   0x13 resize       u16 rows, u16 cols (big-endian)
 */
import { ProtocolError } from "../../errors.js";
import type { OutputStream } from "../output.js";

export const FRAME = {
  waiting: 0x01,
  success: 0x02,
  error: 0x03,
  data: 0x04,
  eof: 0x05,
  exit: 0x06,
  stdin: 0x10,
  stdinClose: 0x11,
  signal: 0x12,
  resize: 0x13,
} as const;

const STREAM_ID: Record<OutputStream, number> = { stdout: 1, stderr: 2 };

/** How a job ended, as the exit frame carries it. */
export interface ExitPayload {
  status: string;
  exit_status: number | null;
  signal: string | null;
}

export type ServerFrame =
  | { type: "waiting" }
  | { type: "success" }
  | { type: "error"; message: string }
  | { type: "data"; stream: OutputStream; data: Buffer }
  | { type: "eof"; stream: OutputStream }
  | { type: "exit"; exit: ExitPayload };

export type ClientFrame =
  | { type: "stdin"; data: Buffer }
  | { type: "stdin_close" }
  | { type: "signal"; signal: string }
  | { type: "resize"; rows: number; cols: number };

/** Bytes before the output in a data frame: type and stream. */
export const DATA_HEADER_BYTES = 2;

/** Writes a data frame's header into the first bytes of `frame`. */
export function writeDataHeader(frame: Buffer, stream: OutputStream): void {
  frame[0] = FRAME.data;
  frame[1] = STREAM_ID[stream];
}

export function encodeServer(frame: ServerFrame): Buffer {
  switch (frame.type) {
    case "waiting":
      return Buffer.from([FRAME.waiting]);
    case "success":
      return Buffer.from([FRAME.success]);
    case "error":
      return withType(FRAME.error, Buffer.from(frame.message, "utf8"));
    case "data":
      return Buffer.concat([
        Buffer.from([FRAME.data, STREAM_ID[frame.stream]]),
        frame.data,
      ]);
    case "eof":
      return Buffer.from([FRAME.eof, STREAM_ID[frame.stream]]);
    case "exit":
      return withType(FRAME.exit, Buffer.from(JSON.stringify(frame.exit)));
  }
}

export function decodeServer(message: Buffer): ServerFrame {
  const type = message[0];
  const body = message.subarray(1);
  switch (type) {
    case FRAME.waiting:
      return { type: "waiting" };
    case FRAME.success:
      return { type: "success" };
    case FRAME.error:
      return { type: "error", message: body.toString("utf8") };
    case FRAME.data:
      return {
        type: "data",
        stream: streamOf(body[0]),
        data: body.subarray(1),
      };
    case FRAME.eof:
      return { type: "eof", stream: streamOf(body[0]) };
    case FRAME.exit:
      return {
        type: "exit",
        exit: JSON.parse(body.toString("utf8")) as ExitPayload,
      };
    default:
      throw new ProtocolError(`Unknown attach frame type ${describe(type)}`);
  }
}

export function encodeClient(frame: ClientFrame): Buffer {
  switch (frame.type) {
    case "stdin":
      return withType(FRAME.stdin, frame.data);
    case "stdin_close":
      return Buffer.from([FRAME.stdinClose]);
    case "signal":
      return withType(FRAME.signal, Buffer.from(frame.signal, "utf8"));
    case "resize": {
      const out = Buffer.alloc(5);
      out.writeUInt8(FRAME.resize, 0);
      out.writeUInt16BE(frame.rows, 1);
      out.writeUInt16BE(frame.cols, 3);
      return out;
    }
  }
}

/** Decodes a client frame; ProtocolError names what is wrong. */
export function decodeClient(message: Buffer): ClientFrame {
  const type = message[0];
  const body = message.subarray(1);
  switch (type) {
    case FRAME.stdin:
      return { type: "stdin", data: body };
    case FRAME.stdinClose:
      expectLength(body, 0, "stdin_close");
      return { type: "stdin_close" };
    case FRAME.signal:
      return { type: "signal", signal: body.toString("utf8") };
    case FRAME.resize: {
      expectLength(body, 4, "resize");
      const rows = body.readUInt16BE(0);
      const cols = body.readUInt16BE(2);
      if (rows === 0 || cols === 0) {
        throw new ProtocolError(
          `Invalid resize frame: ${rows} rows by ${cols} columns has a zero side`,
        );
      }
      return { type: "resize", rows, cols };
    }
    default:
      throw new ProtocolError(`Unknown attach frame type ${describe(type)}`);
  }
}

function withType(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), body]);
}

function streamOf(id: number | undefined): OutputStream {
  if (id === 1) return "stdout";
  if (id === 2) return "stderr";
  throw new ProtocolError(`Unknown attach stream id ${describe(id)}`);
}

function expectLength(body: Buffer, length: number, name: string): void {
  if (body.length !== length) {
    throw new ProtocolError(
      `Invalid ${name} frame: expected ${length} bytes after the type, got ${body.length}`,
    );
  }
}

function describe(byte: number | undefined): string {
  return byte === undefined
    ? "(empty frame)"
    : `0x${byte.toString(16).padStart(2, "0")}`;
}
