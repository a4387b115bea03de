/**
 * Reads a job's output with its streams told apart, from the start or from
 * now, following it until the job's output ends. A reader that keeps up
 * gets new chunks straight from the live feed (a small bounded queue); one
 * that falls behind reads the `output` file and its chunk index at its own
 * pace, so a slow reader costs no memory and never holds up the job or
 * other readers. Either way every byte comes once, in order.
 */
import { closeSync, openSync, readSync } from "node:fs";

import {
  INDEX_RECORD_BYTES,
  type JobOutput,
  type OutputStream,
} from "../output.js";

/** Most bytes handed out in one piece. */
const MAX_PIECE_BYTES = 1024 * 1024;
/** Index records read at once. */
const INDEX_BATCH = 4096;
/** Live bytes held for a reader that keeps up; beyond, it reads the file. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

export interface OutputPiece {
  stream: OutputStream;
  data: Buffer;
}

export interface CursorOptions {
  /** Start at the first byte the job wrote (else at the current end). */
  fromStart: boolean;
  /** Streams to hand out; others are skipped. */
  streams: ReadonlySet<OutputStream>;
  /** Stop at what is on disk now instead of following. */
  untilNow?: boolean;
}

/** See the module comment. */
export class OutputCursor {
  readonly #output: JobOutput;
  readonly #streams: ReadonlySet<OutputStream>;
  readonly #stopFollowing: () => void;
  #dataPos: number;
  #indexPos: number;
  #indexTarget: number;
  #ended = false;
  #closed = false;
  #wake: (() => void) | null = null;
  #files: { data: number; index: number } | null = null;
  readonly #queue: OutputPiece[] = [];
  #queuedBytes = 0;

  constructor(output: JobOutput, options: CursorOptions) {
    this.#output = output;
    this.#streams = options.streams;
    const follower = output.follow("all", {
      data: (chunk, stream) => {
        // Caught up (nothing left to read from disk) and room to spare:
        // take the chunk as it is, as if it had been read back.
        const live =
          this.#indexPos === this.#indexTarget &&
          this.#queuedBytes + chunk.length <= MAX_QUEUED_BYTES;
        this.#indexTarget += INDEX_RECORD_BYTES;
        if (live) {
          this.#indexPos += INDEX_RECORD_BYTES;
          this.#dataPos += chunk.length;
          if (this.#streams.has(stream)) {
            this.#queue.push({ stream, data: chunk });
            this.#queuedBytes += chunk.length;
          }
        }
        this.#notify();
      },
      end: () => {
        this.#ended = true;
        this.#notify();
      },
    });
    this.#stopFollowing = follower.close;
    const now = output.position();
    this.#indexTarget = now.index;
    if (options.untilNow) {
      this.#stopFollowing();
      this.#ended = true;
    }
    this.#dataPos = options.fromStart ? 0 : now.data;
    this.#indexPos = options.fromStart ? 0 : now.index;
  }

  /** Pieces in order until the output ends (or the cursor is closed). */
  async *pieces(): AsyncGenerator<OutputPiece> {
    try {
      this.#files = {
        data: openSync(this.#output.path("all"), "r"),
        index: openSync(this.#output.indexPath, "r"),
      };
      for (;;) {
        if (this.#closed) return;
        // Queued live chunks come before anything read from disk: they
        // precede it in the output.
        const piece = this.#queue.shift();
        if (piece) {
          this.#queuedBytes -= piece.data.length;
          yield piece;
          continue;
        }
        if (this.#indexPos < this.#indexTarget) {
          yield* this.#readBatch();
          continue;
        }
        if (this.#ended) return;
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    } finally {
      this.close();
      if (this.#files) {
        closeSync(this.#files.data);
        closeSync(this.#files.index);
      }
      this.#files = null;
    }
  }

  /** Stops following; a pending `pieces()` returns. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopFollowing();
    this.#notify();
  }

  *#readBatch(): Generator<OutputPiece> {
    const files = this.#files as { data: number; index: number };
    const records = Math.min(
      INDEX_BATCH,
      (this.#indexTarget - this.#indexPos) / INDEX_RECORD_BYTES,
    );
    const index = Buffer.allocUnsafe(records * INDEX_RECORD_BYTES);
    readExactly(files.index, index, this.#indexPos);
    this.#indexPos += index.length;

    // Merge neighbouring records of one stream into pieces.
    let stream: OutputStream | null = null;
    let start = this.#dataPos;
    let length = 0;
    const flush = (): OutputPiece | null => {
      if (stream === null || length === 0) return null;
      if (!this.#streams.has(stream)) return null;
      const piece = { stream, data: Buffer.allocUnsafe(length) };
      readExactly(files.data, piece.data, start);
      return piece;
    };
    for (let i = 0; i < records; i++) {
      const id = index.readUInt8(i * INDEX_RECORD_BYTES);
      const size = index.readUInt32BE(i * INDEX_RECORD_BYTES + 1);
      const next: OutputStream = id === 2 ? "stderr" : "stdout";
      if (next !== stream || length + size > MAX_PIECE_BYTES) {
        const piece = flush();
        if (piece) yield piece;
        stream = next;
        start = this.#dataPos;
        length = 0;
      }
      length += size;
      this.#dataPos += size;
    }
    const last = flush();
    if (last) yield last;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

// Reads are synchronous: the bytes were just written and sit in the page
// cache, so a read costs less than a hop through the thread pool.
function readExactly(fd: number, buffer: Buffer, position: number): void {
  let done = 0;
  while (done < buffer.length) {
    const bytesRead = readSync(
      fd,
      buffer,
      done,
      buffer.length - done,
      position + done,
    );
    if (bytesRead === 0)
      throw new Error("Job output is shorter than its index");
    done += bytesRead;
  }
}
