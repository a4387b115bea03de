/**
 * The spooler: gathers up to `spool_size` lines into one batch from files
 * that have no batch in flight, taking files in turn, and locks those
 * files until the batch is acked, so each file has at most one batch in
 * flight and its lines reach the server in order. Files that only had
 * over-long lines skipped still get their offsets moved forward, in a
 * batch with no events that is saved without being sent.
 */
import type { LineEvent } from "./events.js";
import type { FileTable } from "./table.js";
import type { OffsetClaim, TrackedFile } from "./tracked.js";

import { LineEvents } from "./events.js";

/** Lines of one or more files, sent together and acked together. */
export interface Batch {
  readonly id: number;
  readonly events: LineEvents;
  readonly lines: number;
  readonly bytes: number;
  readonly claims: readonly OffsetClaim[];
  attempts: number;
}

/** What the spooler tells the shipper about files as it reads them. */
export interface SpoolerHooks {
  /** A file got shorter than its read offset, or lost its first bytes. */
  truncated(file: TrackedFile): void;
  /** Lines were skipped as over-long. */
  skipped(file: TrackedFile, lines: number, bytes: number): void;
  /** A read failed; the file waits for the next refresh. */
  readFailed(file: TrackedFile, err: unknown): void;
}

export interface SpoolerOptions {
  spoolSize: number;
  now: () => number;
}

export class Spooler {
  readonly #table: FileTable;
  readonly #options: SpoolerOptions;
  readonly #hooks: SpoolerHooks;
  #nextId = 1;

  constructor(table: FileTable, options: SpoolerOptions, hooks: SpoolerHooks) {
    this.#table = table;
    this.#options = options;
    this.#hooks = hooks;
  }

  /**
   * The next batch, its files locked; undefined when no file without a
   * batch in flight has anything new.
   */
  async build(): Promise<Batch | undefined> {
    const { spoolSize } = this.#options;
    const events: LineEvent[] = [];
    const claims: OffsetClaim[] = [];
    let bytes = 0;
    for (const file of this.#table.ready()) {
      if (events.length >= spoolSize) break;
      if (file.inFlight) continue;
      const before = events.length;
      const read = await this.#read(file, spoolSize - events.length, events);
      this.#table.readFrom(file);
      if (read === undefined) continue;
      for (let i = before; i < events.length; i++) {
        bytes += (events[i] as LineEvent).bytes.length;
      }
      claims.push({ file, offset: read, generation: file.generation });
      this.#table.lock([{ file, offset: read, generation: file.generation }]);
    }
    if (claims.length === 0) return undefined;
    return {
      id: this.#nextId++,
      events: new LineEvents(events),
      lines: events.length,
      bytes,
      claims,
      attempts: 0,
    };
  }

  /**
   * Reads up to `max` lines of `file` into `out`; returns the offset the
   * batch may save for it, or undefined when it had nothing new.
   */
  async #read(
    file: TrackedFile,
    max: number,
    out: LineEvent[],
  ): Promise<number | undefined> {
    try {
      const reader = await this.#table.reader(file);
      if (reader === undefined) return undefined;
      const result = await reader.read(max);
      const now = this.#options.now();
      file.lastReadMs = now;
      if (result.skippedLines > 0) {
        this.#hooks.skipped(file, result.skippedLines, result.skippedBytes);
      }
      if (result.eof) file.dirty = false;
      if (result.lines.length === 0 && result.offset === file.readOffset) {
        if (result.eof) await this.#checkTruncated(file);
        return undefined;
      }
      file.lastDataMs = now;
      file.readOffset = result.offset;
      for (const line of result.lines) {
        out.push({
          bytes: line.bytes,
          endOffset: line.endOffset,
          template: file.template,
        });
      }
      return result.offset;
    } catch (err) {
      file.dirty = false;
      this.#hooks.readFailed(file, err);
      return undefined;
    }
  }

  async #checkTruncated(file: TrackedFile): Promise<void> {
    const reader = file.reader;
    if (reader === undefined) return;
    const { size } = await reader.stat();
    file.size = size;
    if (size < file.readOffset) this.#hooks.truncated(file);
  }
}
