/**
 * A batch as a client puts it on the wire: a window frame with the number
 * of events, then one frame per event (v1 key/value pairs or v2 JSON),
 * the events inside one compressed frame unless the level is 0 (one zlib
 * stream per batch, as butteredscones and Filebeat send it).
 */
import { errorMessage, ValidationError } from "../errors.js";
import {
  encodeCompressedAsync,
  encodeFrame,
  objectToPairs,
  type Frame,
  type Version,
} from "./frames.js";

/** How a batch is encoded. */
export interface BatchEncoding {
  version: Version;
  /** zlib level 0-9; 0 sends the event frames without a compressed frame. */
  compressionLevel: number;
  /** Sequence number of the first event; the rest follow one by one. */
  firstSeq: number;
}

/**
 * Encodes `events` (deflating off the event loop). Throws ValidationError,
 * with `field` `events[i]`, for an event that is not an object or cannot
 * be encoded.
 */
export async function encodeBatch(
  events: readonly Record<string, unknown>[],
  encoding: BatchEncoding,
): Promise<Buffer> {
  const { version, compressionLevel, firstSeq } = encoding;
  const frames = events.map((event, i) =>
    encodeFrame(eventFrame(version, firstSeq + i, event, i)),
  );
  const window = encodeFrame({ type: "window", version, size: events.length });
  const body = Buffer.concat(frames);
  if (compressionLevel === 0) return Buffer.concat([window, body]);
  const compressed = await encodeCompressedAsync(
    version,
    body,
    compressionLevel,
  );
  return Buffer.concat([window, compressed]);
}

function eventFrame(
  version: Version,
  seq: number,
  event: Record<string, unknown>,
  index: number,
): Frame {
  const field = `events[${index}]`;
  if (typeof event !== "object" || event === null || Array.isArray(event)) {
    throw new ValidationError(
      `Invalid event ${index}: expected an object`,
      field,
    );
  }
  try {
    if (version === 1) {
      return { type: "data", version, seq, pairs: objectToPairs(event) };
    }
    const payload = Buffer.from(JSON.stringify(event));
    return { type: "json", version, seq, payload };
  } catch (err) {
    throw new ValidationError(
      `Invalid event ${index}: ${errorMessage(err)}`,
      field,
      { cause: err },
    );
  }
}
