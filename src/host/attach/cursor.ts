/**
 * Reads a job's output with its streams told apart, from the start or from
 * now, following it until the job's output ends. Every byte is read back
 * from the job's files (just written, so from the page cache) at the
 * reader's own pace: a slow reader costs no memory and never holds up the
 * job or other readers, and a fast one gets large pieces, read straight
 * into a buffer it owns. Every byte comes once, in the order the host
 * received it.
 *
 * The index (output.ts) lists every chunk in arrival order with its stream
 * and length; walking it while keeping one read position per stream file
 * rebuilds the interleaved output without storing it twice. Records of one
 * stream that follow each other are adjacent in that stream's file, so
 * they are read with one call.
 */
import { closeSync, openSync, readSync } from "node:fs";

import {
  INDEX_RECORD_BYTES,
  STREAM_IDS,
  type JobOutput,
  type OutputPosition,
  type OutputStream,
} from "../output.js";

/** Index records read from the file at once. */
const INDEX_BATCH = 4096;
/** Default largest piece `pieces()` hands out. */
const DEFAULT_PIECE_BYTES = 1024 * 1024;

export interface OutputPiece {
  stream: OutputStream;
  data: Buffer;
}

/** What `read()` put into the caller's buffer. */
export interface ReadResult {
  stream: OutputStream;
  bytes: number;
}

export interface CursorOptions {
  /** Start at the first byte the job wrote (else at the current end). */
  fromStart: boolean;
  /** Streams to hand out; others are skipped. */
  streams: ReadonlySet<OutputStream>;
  /** Stop at what is on disk now instead of following. */
  untilNow?: boolean;
  /**
   * Bytes of the chosen streams, in order, to pass over before handing
   * any out (a client resuming where it was); default 0.
   */
  skipBytes?: number;
}

// One contiguous range of a stream's file.
interface Run {
  stream: OutputStream;
  position: number;
  length: number;
}

/** See the module comment. */
export class OutputCursor {
  readonly #output: JobOutput;
  readonly #streams: ReadonlySet<OutputStream>;
  readonly #stopFollowing: () => void;
  /** How far bytes have been handed out (or skipped), per file. */
  readonly #read: OutputPosition;
  /** Index bytes known to be on disk. */
  #indexTarget: number;
  /** Records read from the index file, not yet used up. */
  #index = Buffer.alloc(0);
  #indexAt = 0;
  /** Bytes left of the record at `#indexAt`, once it is partly used. */
  #recordLeft = 0;
  /** Bytes still to pass over before the first one handed out. */
  #skipLeft: number;
  #ended = false;
  #closed = false;
  #wake: (() => void) | null = null;
  #wakeScheduled = false;
  readonly #fds = new Map<OutputStream | "index", number>();

  constructor(output: JobOutput, options: CursorOptions) {
    this.#output = output;
    this.#streams = options.streams;
    this.#skipLeft = options.skipBytes ?? 0;
    const follower = output.follow({
      data: () => {
        this.#indexTarget = output.position().index;
        this.#notifySoon();
      },
      end: () => {
        this.#ended = true;
        this.#holdFiles();
        this.#notify();
      },
    });
    this.#stopFollowing = follower.close;
    this.#indexTarget = follower.position.index;
    this.#read = options.fromStart
      ? { stdout: 0, stderr: 0, index: 0 }
      : follower.position;
    if (options.untilNow) {
      this.#stopFollowing();
      this.#ended = true;
    }
    if (this.#ended || output.ended) this.#holdFiles();
  }

  /**
   * Copies the next bytes of one stream into `buffer` from `offset`, as
   * many as are on disk and fit. Null when there is nothing to read now
   * (see `wait()`). Throws when the files are unreadable.
   */
  read(buffer: Buffer, offset = 0): ReadResult | null {
    if (this.#closed) return null;
    this.#skip();
    const run = this.#nextRun(buffer.length - offset);
    if (!run) return null;
    readExactly(this.#fd(run.stream), buffer, offset, run);
    return { stream: run.stream, bytes: run.length };
  }

  /**
   * Resolves true once there may be something to read, false once the
   * output has ended and all of it was read, or the cursor was closed.
   */
  async wait(): Promise<boolean> {
    for (;;) {
      if (this.#closed) return false;
      if (this.#pending()) return true;
      if (this.#ended) return false;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Pieces of at most `maxBytes`, in order, until the output ends. */
  async *pieces(maxBytes = DEFAULT_PIECE_BYTES): AsyncGenerator<OutputPiece> {
    try {
      while (await this.wait()) {
        this.#skip();
        const run = this.#nextRun(maxBytes);
        if (!run) continue;
        const data = Buffer.allocUnsafe(run.length);
        readExactly(this.#fd(run.stream), data, 0, run);
        yield { stream: run.stream, data };
      }
    } finally {
      this.close();
    }
  }

  /** Stops following and closes the files; `wait()` resolves false. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopFollowing();
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
    this.#notify();
  }

  // Passes over what is left of `skipBytes` as far as it is on disk,
  // without reading it: only the read positions move.
  #skip(): void {
    while (this.#skipLeft > 0) {
      const run = this.#nextRun(this.#skipLeft);
      if (!run) return;
      this.#skipLeft -= run.length;
    }
  }

  #pending(): boolean {
    return this.#recordLeft > 0 || this.#read.index < this.#indexTarget;
  }

  // Takes up to `maxBytes` of one stream from the records ahead: records
  // of streams not wanted are skipped, a wanted record of the other stream
  // ends the run. Advances the read positions past what it returns.
  #nextRun(maxBytes: number): Run | null {
    if (maxBytes < 1) return null;
    let run: Run | null = null;
    while (this.#pending()) {
      if (this.#indexAt === this.#index.length) this.#loadIndex();
      const stream = streamOf(this.#index.readUInt8(this.#indexAt));
      const size = this.#index.readUInt32BE(this.#indexAt + 1);
      const left = this.#recordLeft > 0 ? this.#recordLeft : size;
      if (!this.#streams.has(stream) || left === 0) {
        this.#read[stream] += left;
        this.#finishRecord();
        continue;
      }
      if (run && run.stream !== stream) break;
      run ??= { stream, position: this.#read[stream], length: 0 };
      const take = Math.min(left, maxBytes - run.length);
      if (take === 0) break;
      run.length += take;
      this.#read[stream] += take;
      if (take === left) this.#finishRecord();
      else this.#recordLeft = left - take;
    }
    return run;
  }

  #finishRecord(): void {
    this.#recordLeft = 0;
    this.#indexAt += INDEX_RECORD_BYTES;
    this.#read.index += INDEX_RECORD_BYTES;
  }

  #loadIndex(): void {
    const records = Math.min(
      INDEX_BATCH,
      (this.#indexTarget - this.#read.index) / INDEX_RECORD_BYTES,
    );
    const index = Buffer.allocUnsafe(records * INDEX_RECORD_BYTES);
    readExactly(this.#fd("index"), index, 0, {
      position: this.#read.index,
      length: index.length,
    });
    this.#index = index;
    this.#indexAt = 0;
  }

  // Files are opened when first needed: a reader of one stream never
  // opens the other's file.
  #fd(file: OutputStream | "index"): number {
    let fd = this.#fds.get(file);
    if (fd === undefined) {
      const path =
        file === "index" ? this.#output.indexPath : this.#output.path(file);
      fd = openSync(path, "r");
      this.#fds.set(file, fd);
    }
    return fd;
  }

  // Once the output is complete, the files this cursor reads are opened
  // at once: the job may then be removed (its directory deleted) while
  // the cursor reads on, and an open file stays readable. A file not
  // there holds no bytes the index lists; reading is left to fail as
  // before if it does.
  #holdFiles(): void {
    if (this.#closed) return;
    for (const file of ["index", ...this.#streams] as const) {
      try {
        this.#fd(file);
      } catch {
        // See above.
      }
    }
  }

  // New output wakes the reader once the event loop has taken in all the
  // output that was ready (the job's pipe is read up to 32 times in a
  // row), so the reader reads it in one go instead of chunk by chunk.
  #notifySoon(): void {
    if (this.#wake === null || this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    setImmediate(() => {
      this.#wakeScheduled = false;
      this.#notify();
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

function streamOf(id: number): OutputStream {
  if (id === STREAM_IDS.stdout) return "stdout";
  if (id === STREAM_IDS.stderr) return "stderr";
  throw new Error(`Job output index has an unknown stream id ${id}`);
}

// Reads are synchronous: the bytes were just written and sit in the page
// cache, so a read costs less than a hop through the thread pool.
function readExactly(
  fd: number,
  buffer: Buffer,
  offset: number,
  range: { position: number; length: number },
): void {
  let done = 0;
  while (done < range.length) {
    const bytesRead = readSync(
      fd,
      buffer,
      offset + done,
      range.length - done,
      range.position + done,
    );
    if (bytesRead === 0) {
      throw new Error("Job output is shorter than its index");
    }
    done += bytesRead;
  }
}
