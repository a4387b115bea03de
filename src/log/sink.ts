/**
 * What the line-writing sinks share: their options (resolved and checked
 * once, at construction) and a synchronous write that survives partial
 * writes and non-blocking descriptors.
 */
import { writeSync } from "node:fs";

import type { FormatMode } from "./types.js";

import { TimeText, lineFormatter, type LineFormatter } from "./format.js";

/** How long a write may wait on a full non-blocking descriptor. */
export const MAX_BLOCK_MS = 10_000;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Options common to sinks that write lines. */
export interface SinkOptions {
  /** Start each line with `now=`; default true. */
  time?: boolean;
  /** `now=` and Date values with milliseconds; default false. */
  timeMs?: boolean;
  /** Quoting rules; default "safe". */
  mode?: FormatMode;
  /** Wall clock in milliseconds since the epoch; default Date.now. */
  clock?: () => number;
}

/** Turns records into newline-terminated lines for a sink. */
export class LineWriter {
  readonly #formatter: LineFormatter;
  readonly #timeText: TimeText | undefined;
  readonly #clock: () => number;

  constructor(options: SinkOptions, timeByDefault: boolean) {
    const timeMs = options.timeMs ?? false;
    this.#formatter = lineFormatter(options.mode, timeMs); // checks the mode
    this.#timeText =
      (options.time ?? timeByDefault) ? new TimeText(timeMs) : undefined;
    this.#clock = options.clock ?? Date.now;
  }

  /** The record as one line ending in a newline. */
  line(record: Record<string, unknown>): string {
    const time = this.#timeText;
    if (time === undefined) return this.#formatter.line(record) + "\n";
    return this.#formatter.line(record, time.at(this.#clock())) + "\n";
  }
}

/**
 * Writes all of `text` to `fd`, resuming after partial writes and waiting
 * (at most MAX_BLOCK_MS) while a non-blocking descriptor is full. Throws
 * the write error otherwise.
 */
export function writeFully(fd: number, text: string): void {
  const bytes = Buffer.from(text, "utf8");
  if (writeUpTo(fd, bytes, MAX_BLOCK_MS) < bytes.length) {
    throw Object.assign(new Error("write EAGAIN: the descriptor stayed full"), {
      code: "EAGAIN",
    });
  }
}

/**
 * Writes as much of `bytes` to `fd` as it takes, resuming after partial
 * writes and waiting at most `maxBlockMs` in all while a non-blocking
 * descriptor is full (0: not at all). Returns how many bytes were written;
 * throws errors other than a full descriptor.
 */
export function writeUpTo(
  fd: number,
  bytes: Buffer,
  maxBlockMs: number,
): number {
  let offset = 0;
  let waitedMs = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      if (waitedMs >= maxBlockMs) return offset;
      Atomics.wait(sleepCell, 0, 0, 1);
      waitedMs += 1;
    }
  }
  return offset;
}
