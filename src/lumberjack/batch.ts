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
 * Events that encode their own frames, for callers that hold event bytes
 * already (the shipper's lines) and would waste time building objects.
 */
export interface EventFrames {
  /** How many events, so how many frames `encode` writes. */
  readonly count: number;
  /**
   * The event frames back to back, uncompressed: v1 'D' or v2 'J' frames
   * (as `encodeFrame` writes them), numbered from `firstSeq` up.
   */
  encode(version: Version, firstSeq: number): Buffer;
}

/** Events as objects or as frames they encode themselves. */
export type BatchEvents = readonly Record<string, unknown>[] | EventFrames;

/** How many events a batch carries. */
export function eventCount(events: BatchEvents): number {
  return isEventFrames(events) ? events.count : events.length;
}

/**
 * Encodes `events` (deflating off the event loop). Throws ValidationError,
 * with `field` `events[i]`, for an event that is not an object or cannot
 * be encoded.
 */
export async function encodeBatch(
  events: BatchEvents,
  encoding: BatchEncoding,
): Promise<Buffer> {
  const { version, compressionLevel, firstSeq } = encoding;
  const count = eventCount(events);
  const window = encodeFrame({ type: "window", version, size: count });
  const body = isEventFrames(events)
    ? events.encode(version, firstSeq)
    : Buffer.concat(
        events.map((event, i) =>
          encodeFrame(eventFrame(version, firstSeq + i, event, i)),
        ),
      );
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

/**
 * A batch encoded ahead of its turn, so the encoding and deflating of the
 * next batch overlap the server's work on the one before. The client uses
 * the bytes when the encoding still fits at send time (v2 numbers every
 * batch from 1, so it always does; v1 numbers per connection) and encodes
 * again otherwise.
 */
export class PreparedBatch {
  readonly events: BatchEvents;
  readonly encoding: Readonly<BatchEncoding>;
  readonly bytes: Promise<Buffer>;

  constructor(events: BatchEvents, encoding: BatchEncoding) {
    this.events = events;
    this.encoding = { ...encoding };
    this.bytes = encodeBatch(events, encoding);
    // A failure is seen when the batch is sent, not as an unhandled one.
    this.bytes.catch(() => {});
  }

  /** Whether the bytes are what `encoding` would produce. */
  fits(encoding: BatchEncoding): boolean {
    const e = this.encoding;
    return (
      e.version === encoding.version &&
      e.compressionLevel === encoding.compressionLevel &&
      e.firstSeq === encoding.firstSeq
    );
  }
}

function isEventFrames(events: BatchEvents): events is EventFrames {
  return !Array.isArray(events);
}
