/**
 * MemoryLogger: keeps every record it receives, for tests and for callers
 * that want to inspect what was logged. Nothing is written anywhere.
 */
import type { Data, FormatMode, Logger } from "./types.js";

import { lineFormatter, type LineFormatter } from "./format.js";

/** Options of MemoryLogger. */
export interface MemoryLoggerOptions {
  /** Quoting used by `lines()`; default "safe". */
  mode?: FormatMode;
}

/** Records kept in memory; `lines()` formats them without `now=`. */
export class MemoryLogger implements Logger {
  /** Every record logged, oldest first, exactly as received. */
  readonly records: Data[] = [];
  readonly #formatter: LineFormatter;

  constructor(options: MemoryLoggerOptions = {}) {
    this.#formatter = lineFormatter(options.mode);
  }

  log(data: Data): void {
    this.records.push(data);
  }

  /** Each record as a logfmt line, no time, no newline. */
  lines(): string[] {
    return this.records.map((record) => this.#formatter.line(record));
  }

  /** Forgets every record. */
  clear(): void {
    this.records.length = 0;
  }
}
