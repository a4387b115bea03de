/**
 * StreamLogger: writes each record as one line to a Writable stream or a
 * file descriptor as soon as it is logged, with `now=` first by default.
 * Simple and unbuffered; BufferedLogger is the fast one.
 */
import type { Writable } from "node:stream";

import type { Data, Logger } from "./types.js";

import { LineWriter, writeFully, type SinkOptions } from "./sink.js";

/** Options of StreamLogger; `time` defaults to true. */
export type StreamLoggerOptions = SinkOptions;

let stdout: StreamLogger | undefined;

/**
 * Writes lines to a stream (default process.stdout) or, given a number, to
 * that file descriptor with synchronous writes. Stream errors are the
 * stream owner's to handle.
 */
export class StreamLogger implements Logger {
  readonly #writer: LineWriter;
  readonly #stream: Writable | undefined;
  readonly #fd: number | undefined;

  constructor(
    destination: Writable | number = process.stdout,
    options: StreamLoggerOptions = {},
  ) {
    this.#writer = new LineWriter(options, true);
    if (typeof destination === "number") this.#fd = destination;
    else this.#stream = destination;
  }

  log(data: Data): void {
    const line = this.#writer.line(data);
    if (this.#stream !== undefined) this.#stream.write(line);
    else writeFully(this.#fd ?? 1, line);
  }
}

/** The shared stdout logger (with time) that contexts use by default. */
export function stdoutLogger(): StreamLogger {
  stdout ??= new StreamLogger(process.stdout);
  return stdout;
}
