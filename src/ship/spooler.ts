/**
 * The spooler: gathers up to `spool_size` lines into one batch, taking
 * files in turn, and enters the batch in each of its files' pending list.
 * The shipper sends a batch only when it is the oldest pending one of all
 * its files, so each file has at most one batch in flight and its lines
 * reach the server in order; a file may already give lines to the next
 * batch while one is in flight, so reading and encoding overlap the
 * server's work. Files that only had over-long lines skipped still get
 * their offsets moved forward, in a batch with no events that is saved
 * (in order) without being sent.
 */
import type { PreparedBatch } from "../lumberjack/batch.js";
import type { LineSegment } from "./events.js";
import type { ReadResult } from "./reader.js";
import type { FileTable } from "./table.js";
import type { OffsetClaim, TrackedFile } from "./tracked.js";

import { LineEvents } from "./events.js";
import { canRead } from "./tracked.js";

/** Lines of one or more files, sent together and acked together. */
export interface Batch {
  readonly id: number;
  readonly events: LineEvents;
  readonly lines: number;
  readonly bytes: number;
  readonly claims: readonly OffsetClaim[];
  attempts: number;
  /** The events encoded ahead of their turn (v2), when they are. */
  prepared?: PreparedBatch;
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
   * The next batch, locked into its files' pending lists; undefined when
   * no file that can take another batch has anything new.
   */
  async build(): Promise<Batch | undefined> {
    const { spoolSize } = this.#options;
    const segments: LineSegment[] = [];
    const claims: OffsetClaim[] = [];
    let lines = 0;
    let bytes = 0;
    for (const file of this.#table.ready()) {
      if (lines >= spoolSize) break;
      if (!canRead(file)) continue;
      const read = await this.#read(file, spoolSize - lines);
      this.#table.readFrom(file);
      if (read === undefined) continue;
      claims.push({ file, offset: read.offset, generation: file.generation });
      if (read.lines.length === 0) continue;
      segments.push({ template: file.template, lines: read.lines });
      lines += read.lines.length;
      for (const line of read.lines) bytes += line.bytes.length;
    }
    if (claims.length === 0) return undefined;
    const id = this.#nextId++;
    this.#table.lock(id, claims);
    return {
      id,
      events: new LineEvents(segments),
      lines,
      bytes,
      claims,
      attempts: 0,
    };
  }

  /**
   * Reads up to `max` lines of `file`; undefined when it had nothing new
   * (no line, no skipped bytes).
   */
  async #read(file: TrackedFile, max: number): Promise<ReadResult | undefined> {
    try {
      // Taken before the reader opens: it opens at the offset of now.
      const generation = file.generation;
      const reader = await this.#table.reader(file);
      if (reader === undefined) return undefined;
      const result = await reader.read(max);
      if (this.#restarted(file, generation)) return undefined;
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
      const same = await this.#table.samePrefix(file, result.offset);
      if (this.#restarted(file, generation)) return undefined;
      if (!same) {
        this.#hooks.truncated(file); // rewritten: what was read is not ours
        return undefined;
      }
      file.lastDataMs = now;
      file.readOffset = result.offset;
      return result;
    } catch (err) {
      file.dirty = false;
      this.#hooks.readFailed(file, err);
      return undefined;
    }
  }

  // Whether the file was found truncated (and set to start again) while
  // a read of it was in progress: what that read returned may be the
  // middle of new lines, so it is dropped and the reader starts again
  // where the file now is to be read from.
  #restarted(file: TrackedFile, generation: number): boolean {
    if (file.generation === generation) return false;
    if (file.reader?.reading === false) file.reader.reset(file.readOffset);
    return true;
  }

  async #checkTruncated(file: TrackedFile): Promise<void> {
    const reader = file.reader;
    if (reader === undefined) return;
    const { size } = await reader.stat();
    file.size = size;
    if (size < file.readOffset) this.#hooks.truncated(file);
  }
}
