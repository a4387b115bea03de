/**
 * Limits the frame decoder enforces against a hostile or broken peer, with
 * their defaults. Resolved and validated once, when a decoder is created.
 */
import { constants } from "node:buffer";

import { ValidationError } from "../errors.js";
import { isWholeIn } from "../numbers.js";

const MAX_U32 = 0xffff_ffff;

/** Smallest frame on the wire: version, type and one u32 (window, ack). */
export const MIN_FRAME_BYTES = 6;

/** What a decoder accepts; every field is optional, defaults below. */
export interface DecoderLimits {
  /** Largest single frame, header included. Default 16 MiB. */
  maxFrameBytes?: number;
  /** Largest window size a window frame may announce. Default 65 536. */
  maxWindow?: number;
  /**
   * Largest inflated content of one compressed frame. Default 64 MiB.
   * Inflating stops as soon as this is passed, so a zip bomb costs at
   * most this much memory.
   */
  maxInflatedBytes?: number;
  /**
   * How many compressed frames may enclose one another. Default 1: a
   * compressed frame may not hold another compressed frame. 0 refuses
   * compressed frames altogether.
   */
  maxNesting?: number;
  /** Most key/value pairs in one v1 data frame. Default 4096. */
  maxPairs?: number;
  /**
   * Most frames one top-level compressed frame may expand to (inner
   * compressed frames not counted). Bounds the objects a small compressed
   * frame can create. Default `maxWindow + 1`: a full window of data
   * frames plus a window frame.
   */
  maxCompressedFrames?: number;
}

/** Limits with every default filled in. */
export type ResolvedLimits = Required<DecoderLimits>;

export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_WINDOW = 65_536;
export const DEFAULT_MAX_INFLATED_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_NESTING = 1;
export const DEFAULT_MAX_PAIRS = 4096;

/** Fills in defaults and rejects values that are not usable limits. */
export function resolveLimits(limits: DecoderLimits = {}): ResolvedLimits {
  const maxWindow = check(
    "maxWindow",
    limits.maxWindow ?? DEFAULT_MAX_WINDOW,
    0,
    MAX_U32,
  );
  return {
    maxFrameBytes: check(
      "maxFrameBytes",
      limits.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      MIN_FRAME_BYTES,
      Number.MAX_SAFE_INTEGER,
    ),
    maxWindow,
    maxInflatedBytes: check(
      "maxInflatedBytes",
      limits.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES,
      1,
      constants.MAX_LENGTH,
    ),
    maxNesting: check(
      "maxNesting",
      limits.maxNesting ?? DEFAULT_MAX_NESTING,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    maxPairs: check(
      "maxPairs",
      limits.maxPairs ?? DEFAULT_MAX_PAIRS,
      1,
      MAX_U32,
    ),
    maxCompressedFrames: check(
      "maxCompressedFrames",
      limits.maxCompressedFrames ?? maxWindow + 1,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
  };
}

function check(name: string, value: unknown, min: number, max: number) {
  if (!isWholeIn(value, min, max)) {
    throw new ValidationError(
      `Invalid decoder limit ${name}: must be an integer from ${min} to ${max}`,
      name,
    );
  }
  return value;
}
