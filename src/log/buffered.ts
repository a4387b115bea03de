/**
 * BufferedLogger: the fast sink. Lines collect in memory and reach the file
 * descriptor in large synchronous writes: when the buffer passes
 * `maxBufferBytes`, when the `flushMs` timer fires, on `flushSync()`, on
 * `close()`, and on process exit (the 'exit' event, which also follows an
 * uncaught exception). A process killed by a signal it does not handle
 * loses what is still buffered: at most `flushMs` worth of lines.
 */
import { closeSync, openSync } from "node:fs";

import type { Data, Logger } from "./types.js";

import { ValidationError } from "../errors.js";
import { LineWriter, writeFully, type SinkOptions } from "./sink.js";

/** Loggers that still hold lines to write when the process exits. */
const unflushed = new Set<BufferedLogger>();
let exitHooked = false;

/** Options of BufferedLogger; `time` defaults to true. */
export interface BufferedLoggerOptions extends SinkOptions {
  /** Descriptor to write to; default 1 (stdout). Ignored with `path`. */
  fd?: number;
  /** File opened for appending instead of `fd`; closed by close(). */
  path?: string;
  /** Longest time a line waits in the buffer; default 50 ms. */
  flushMs?: number;
  /** Buffer size (in UTF-16 units) that forces a write; default 65536. */
  maxBufferBytes?: number;
  /** Told about a failed write; its lines are counted in `droppedLines`. */
  onError?: (err: unknown) => void;
}

/** A buffered, synchronous-on-flush line writer to a file descriptor. */
export class BufferedLogger implements Logger {
  readonly #writer: LineWriter;
  readonly #fd: number;
  readonly #ownsFd: boolean;
  readonly #flushMs: number;
  readonly #maxBufferBytes: number;
  readonly #onError: (err: unknown) => void;
  #buffer = "";
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #droppedLines = 0;

  constructor(options: BufferedLoggerOptions = {}) {
    const flushMs = options.flushMs ?? 50;
    const maxBufferBytes = options.maxBufferBytes ?? 65_536;
    if (!Number.isInteger(flushMs) || flushMs < 1) {
      throw new ValidationError(
        `Invalid flushMs ${flushMs}: expected a whole number of ms >= 1`,
        "flushMs",
      );
    }
    if (!Number.isInteger(maxBufferBytes) || maxBufferBytes < 1) {
      throw new ValidationError(
        `Invalid maxBufferBytes ${maxBufferBytes}: expected an integer >= 1`,
        "maxBufferBytes",
      );
    }
    this.#writer = new LineWriter(options, true);
    this.#flushMs = flushMs;
    this.#maxBufferBytes = maxBufferBytes;
    this.#onError = options.onError ?? (() => {});
    this.#ownsFd = options.path !== undefined;
    this.#fd =
      options.path !== undefined
        ? openSync(options.path, "a")
        : (options.fd ?? 1);

    unflushed.add(this);
    if (!exitHooked) {
      exitHooked = true;
      process.on("exit", flushAll);
    }
  }

  /** Buffers one line; a closed logger counts it as dropped. */
  log(data: Data): void {
    if (this.#closed) {
      this.#droppedLines++;
      return;
    }
    this.#buffer += this.#writer.line(data);
    if (this.#buffer.length >= this.#maxBufferBytes) this.flushSync();
    else this.#timer ??= setTimeout(this.#onTimer, this.#flushMs).unref();
  }

  /** Writes everything buffered now, before returning. */
  flushSync(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#buffer.length === 0) return;

    const text = this.#buffer;
    this.#buffer = "";
    try {
      writeFully(this.#fd, text);
    } catch (err) {
      this.#droppedLines += countLines(text);
      this.#onError(err);
    }
  }

  /** Flushes, then stops; closes the file when it opened one. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flushSync();
    this.#shut();
  }

  /** Stops at once, discarding buffered lines (counted as dropped). */
  destroy(): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#droppedLines += countLines(this.#buffer);
    this.#buffer = "";
    this.#shut();
  }

  /** Lines lost to write errors, destroy(), or logging after close. */
  get droppedLines(): number {
    return this.#droppedLines;
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.flushSync();
  };

  #shut(): void {
    this.#closed = true;
    unflushed.delete(this);
    if (!this.#ownsFd) return;
    try {
      closeSync(this.#fd);
    } catch (err) {
      this.#onError(err);
    }
  }
}

function flushAll(): void {
  for (const logger of unflushed) logger.flushSync();
}

function countLines(text: string): number {
  let lines = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) {
    lines++;
  }
  return lines;
}
