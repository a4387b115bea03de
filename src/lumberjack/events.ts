/**
 * One event of a batch a receiver reads: the frame it came in, the rule
 * it must keep (a v2 event is one JSON object), and what it costs to hold
 * while the rest of its batch comes.
 */
import { errorMessage, ProtocolError } from "../errors.js";
import { pairsToObject, type Frame } from "./frames.js";
import { checkJsonObject } from "./json-check.js";

/**
 * One event as it came over the wire, its frame as decoded: a v2 `json`
 * frame whose `payload` is one JSON object (checked, not parsed), or a v1
 * `data` frame whose `pairs` are the key and value bytes. The Buffers are
 * never reused by the receiver, so a handler may keep them.
 */
export type RawEvent =
  Extract<Frame, { type: "json" }> | Extract<Frame, { type: "data" }>;

// A v2 event is one JSON object; Logstash refuses anything else too.
export function decodeEvent(frame: RawEvent): Record<string, unknown> {
  if (frame.type === "data") return pairsToObject(frame.pairs);
  let value: unknown;
  try {
    value = JSON.parse(frame.payload.toString("utf8"));
  } catch (err) {
    throw new ProtocolError(
      `Invalid JSON event at sequence ${frame.seq}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError(
      `Invalid JSON event at sequence ${frame.seq}: expected an object`,
    );
  }
  return value as Record<string, unknown>;
}

// The raw path: the same rule for v2, checked without building objects.
export function checkRawEvent(frame: RawEvent): RawEvent {
  if (frame.type === "data") return frame;
  const problem = checkJsonObject(frame.payload);
  if (problem !== undefined) {
    throw new ProtocolError(
      `Invalid JSON event at sequence ${frame.seq}: ${problem}`,
    );
  }
  return frame;
}

// What an event holds in memory, as its batch is read.
export function eventBytes(frame: RawEvent): number {
  if (frame.type === "json") return frame.payload.length;
  let bytes = 0;
  for (const [key, value] of frame.pairs) bytes += key.length + value.length;
  return bytes;
}
