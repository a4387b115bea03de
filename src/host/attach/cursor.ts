/**
 * Reads a job's output with its streams told apart, from the start or from
 * now, following it until the job's output ends. It reads the `output`
 * file and its chunk index at its own pace, so a slow reader costs no
 * memory and never holds up the job or other readers: the live feed only
 * says how far the files have grown.
 */
import { open, type FileHandle } from "node:fs/promises";

import {
  INDEX_RECORD_BYTES,
  type JobOutput,
  type OutputStream,
} from "../output.js";

/** Most bytes handed out in one piece. */
const MAX_PIECE_BYTES = 256 * 1024;
/** Index records read at once. */
const INDEX_BATCH = 4096;

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
  #files: { data: FileHandle; index: FileHandle } | null = null;

  constructor(output: JobOutput, options: CursorOptions) {
    this.#output = output;
    this.#streams = options.streams;
    const follower = output.follow("all", {
      data: (chunk) => {
        this.#indexTarget += INDEX_RECORD_BYTES;
        void chunk;
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
        data: await open(this.#output.path("all"), "r"),
        index: await open(this.#output.indexPath, "r"),
      };
      for (;;) {
        if (this.#closed) return;
        if (this.#indexPos < this.#indexTarget) {
          yield* this.#readBatch();
          continue;
        }
        if (this.#ended) return;
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    } finally {
      this.close();
      await this.#files?.data.close();
      await this.#files?.index.close();
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

  async *#readBatch(): AsyncGenerator<OutputPiece> {
    const files = this.#files as { data: FileHandle; index: FileHandle };
    const records = Math.min(
      INDEX_BATCH,
      (this.#indexTarget - this.#indexPos) / INDEX_RECORD_BYTES,
    );
    const index = Buffer.alloc(records * INDEX_RECORD_BYTES);
    await readExactly(files.index, index, this.#indexPos);
    this.#indexPos += index.length;

    // Merge neighbouring records of one stream into pieces.
    let stream: OutputStream | null = null;
    let start = this.#dataPos;
    let length = 0;
    const flush = async (): Promise<OutputPiece | null> => {
      if (stream === null || length === 0) return null;
      if (!this.#streams.has(stream)) return null;
      const piece = { stream, data: Buffer.alloc(length) };
      await readExactly(files.data, piece.data, start);
      return piece;
    };
    for (let i = 0; i < records; i++) {
      const id = index.readUInt8(i * INDEX_RECORD_BYTES);
      const size = index.readUInt32BE(i * INDEX_RECORD_BYTES + 1);
      const next: OutputStream = id === 2 ? "stderr" : "stdout";
      if (next !== stream || length + size > MAX_PIECE_BYTES) {
        const piece = await flush();
        if (piece) yield piece;
        stream = next;
        start = this.#dataPos;
        length = 0;
      }
      length += size;
      this.#dataPos += size;
    }
    const last = await flush();
    if (last) yield last;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

async function readExactly(
  file: FileHandle,
  buffer: Buffer,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await file.read(
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
