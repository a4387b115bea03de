/**
 * BufferedLogger: the fast sink. Lines collect in memory and reach the file
 * descriptor in large synchronous writes: when the buffer passes
 * `maxBufferBytes`, when the `flushMs` timer fires, on `flushSync()`, on
 * `close()`, and on process exit (the 'exit' event, which also follows an
 * uncaught exception). A process killed by a signal it does not handle
 * loses what is still buffered: at most `flushMs` worth of lines.
 *
 * A pipe nobody reads (a stuck log collector, a parent busy elsewhere)
 * fills up. By default a write then waits for room, up to 10 s, which
 * stops the whole process meanwhile. A daemon sets `blockMs: 0`: what
 * does not fit stays in memory and is tried again every `flushMs`; past
 * `maxPendingBytes` the oldest whole lines are dropped (counted in
 * `droppedLines`), and once the descriptor takes lines again a line
 * `at=log_dropped lines=N` says how many were lost. close() and process
 * exit still wait (up to 10 s) rather than lose what is pending.
 */
import { closeSync, openSync } from "node:fs";

import type { Data, Logger } from "./types.js";

import { ValidationError } from "../errors.js";
import {
  LineWriter,
  MAX_BLOCK_MS,
  writeUpTo,
  type SinkOptions,
} from "./sink.js";

const NEWLINE = 0x0a;

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
  /**
   * Longest a flush waits while the descriptor is full; default 10000.
   * 0: never wait (see the module comment).
   */
  blockMs?: number;
  /** Bytes kept for a full descriptor before dropping; default 4 MiB. */
  maxPendingBytes?: number;
}

/** A buffered, synchronous-on-flush line writer to a file descriptor. */
export class BufferedLogger implements Logger {
  readonly #writer: LineWriter;
  readonly #fd: number;
  readonly #ownsFd: boolean;
  readonly #flushMs: number;
  readonly #maxBufferBytes: number;
  readonly #onError: (err: unknown) => void;
  readonly #blockMs: number;
  readonly #maxPendingBytes: number;
  #buffer = "";
  /** Bytes a full descriptor did not take yet; written before `#buffer`. */
  #pending: Buffer | null = null;
  /** Lines dropped since the descriptor last took everything. */
  #unreported = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #droppedLines = 0;

  constructor(options: BufferedLoggerOptions = {}) {
    const flushMs = wholeAtLeast(options.flushMs ?? 50, 1, "flushMs", "ms");
    const maxBufferBytes = wholeAtLeast(
      options.maxBufferBytes ?? 65_536,
      1,
      "maxBufferBytes",
    );
    const blockMs = wholeAtLeast(
      options.blockMs ?? MAX_BLOCK_MS,
      0,
      "blockMs",
      "ms",
    );
    const maxPendingBytes = wholeAtLeast(
      options.maxPendingBytes ?? 4 * 1024 * 1024,
      1,
      "maxPendingBytes",
    );
    this.#blockMs = blockMs;
    this.#maxPendingBytes = maxPendingBytes;
    this.#writer = new LineWriter(options, true);
    this.#flushMs = flushMs;
    this.#maxBufferBytes = maxBufferBytes;
    this.#onError = options.onError ?? (() => {});
    this.#ownsFd = options.path !== undefined;
    this.#fd =
      options.path !== undefined
        ? openSync(options.path, "a")
        : (options.fd ?? 1);

    // Node opens its stdout and stderr in non-blocking mode (pipes), and
    // only then does a full pipe show as EAGAIN rather than a wait.
    if (blockMs === 0 && this.#fd === 1) void process.stdout.writable;
    if (blockMs === 0 && this.#fd === 2) void process.stderr.writable;

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
    // While a full descriptor holds lines back, the timer tries again
    // (trying at every full buffer would copy the backlog each time),
    // unless the buffer alone passes the bound on what may wait.
    const limit = this.#pending ? this.#maxPendingBytes : this.#maxBufferBytes;
    if (this.#buffer.length >= limit) this.flushSync();
    else this.#timer ??= setTimeout(this.#onTimer, this.#flushMs).unref();
  }

  /**
   * Writes everything buffered now, before returning; with `blockMs: 0`
   * what a full descriptor does not take is kept for later.
   */
  flushSync(): void {
    this.#flush(this.#blockMs);
  }

  #flush(blockMs: number): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#pending === null && this.#buffer.length === 0) return;

    const fresh = Buffer.from(this.#buffer, "utf8");
    this.#buffer = "";
    const bytes = this.#pending ? Buffer.concat([this.#pending, fresh]) : fresh;
    this.#pending = null;
    let written: number;
    try {
      written = writeUpTo(this.#fd, bytes, blockMs);
    } catch (err) {
      this.#droppedLines += countLines(bytes);
      this.#onError(err);
      return;
    }
    if (written < bytes.length) {
      this.#keep(bytes.subarray(written));
    } else if (this.#unreported > 0) {
      const lines = this.#unreported;
      this.#unreported = 0;
      this.#buffer += this.#writer.line({
        at: "log_dropped",
        lines,
        reason: "output not read",
      });
      this.#flush(blockMs);
    }
  }

  // Keeps what the descriptor did not take, within maxPendingBytes: the
  // head (the rest of a line the descriptor took part of) and the newest
  // whole lines; the oldest whole lines in between are dropped.
  #keep(rest: Buffer): void {
    let kept = rest;
    if (rest.length > this.#maxPendingBytes) {
      const headEnd = rest.indexOf(NEWLINE) + 1;
      let tailStart = rest.length - this.#maxPendingBytes + headEnd;
      // Start the tail at a line's beginning.
      tailStart = Math.max(headEnd, tailStart);
      const next = rest.indexOf(NEWLINE, tailStart - 1);
      tailStart = next === -1 ? rest.length : next + 1;
      const dropped = countLines(rest.subarray(headEnd, tailStart));
      if (dropped > 0 && this.#unreported === 0) {
        this.#onError(
          new Error(
            `Dropping log lines: the output has not been taken for a while ` +
              `(more than ${this.#maxPendingBytes} bytes wait)`,
          ),
        );
      }
      this.#droppedLines += dropped;
      this.#unreported += dropped;
      kept = Buffer.concat([
        rest.subarray(0, headEnd),
        rest.subarray(tailStart),
      ]);
    }
    this.#pending = Buffer.from(kept); // not a view of a larger buffer
    this.#timer ??= setTimeout(this.#onTimer, this.#flushMs).unref();
  }

  /** Flushes, then stops; closes the file when it opened one. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#flush(MAX_BLOCK_MS);
    this.#shut();
  }

  /** Stops at once, discarding buffered lines (counted as dropped). */
  destroy(): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#droppedLines += countLines(this.#buffer);
    if (this.#pending) this.#droppedLines += countLines(this.#pending);
    this.#buffer = "";
    this.#pending = null;
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

// An option that must be a whole number of at least `min`; errors name it.
function wholeAtLeast(
  value: number,
  min: number,
  field: string,
  unit?: "ms",
): number {
  if (Number.isInteger(value) && value >= min) return value;
  const expected =
    unit === "ms" ? `a whole number of ms >= ${min}` : `an integer >= ${min}`;
  throw new ValidationError(
    `Invalid ${field} ${value}: expected ${expected}`,
    field,
  );
}

function flushAll(): void {
  for (const logger of unflushed) logger.close();
}

function countLines(text: string | Buffer): number {
  let lines = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) {
    lines++;
  }
  return lines;
}
