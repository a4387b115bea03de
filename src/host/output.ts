/**
 * One job's captured output. Every chunk a backend reads from the job is
 * written at once (synchronously, so the files always hold exactly what
 * was counted) to three files in the job's directory:
 *
 *   stdout.log   the job's stdout
 *   stderr.log   the job's stderr
 *   output       both, in the order they arrived (no .log suffix, so a
 *                shipper globbing *.log ships every line once)
 *   output.idx   one record per chunk of `output`, so readers can tell the
 *                streams apart: u8 stream (1 stdout, 2 stderr), u32 BE
 *                length
 *
 * Followers get live chunks; `follow()` pairs the byte offset already on
 * disk with the live feed so a reader sees every byte exactly once.
 */
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";

export type OutputStream = "stdout" | "stderr";

/** Which view of the output to read: one stream, or both interleaved. */
export type OutputView = OutputStream | "all";

export const OUTPUT_FILES: Record<OutputView, string> = {
  stdout: "stdout.log",
  stderr: "stderr.log",
  all: "output",
};

export const INDEX_FILE = "output.idx";
export const INDEX_RECORD_BYTES = 5;
export const STREAM_IDS: Record<OutputStream, number> = {
  stdout: 1,
  stderr: 2,
};

export interface OutputFollower {
  /** Bytes of this view already on disk when following began. */
  offset: number;
  /** Stops the live feed. */
  close: () => void;
}

export interface FollowHandlers {
  data(chunk: Buffer, stream: OutputStream): void;
  /** Called once when the job's output has ended. */
  end(): void;
}

/** See the module comment. */
export class JobOutput {
  readonly dir: string;
  readonly #fds: Record<OutputView, number>;
  readonly #offsets: Record<OutputView, number> = {
    stdout: 0,
    stderr: 0,
    all: 0,
  };
  readonly #followers = new Set<{ view: OutputView; h: FollowHandlers }>();
  readonly #indexFd: number;
  readonly #record = Buffer.alloc(INDEX_RECORD_BYTES);
  #indexBytes = 0;
  #ended = false;
  #broken = false;
  #droppedBytes = 0;
  readonly #onError: ((err: unknown) => void) | undefined;

  /**
   * Creates the job directory and opens (truncating) its output files.
   * `onError` hears of the first failed write.
   */
  constructor(dir: string, onError?: (err: unknown) => void) {
    this.dir = dir;
    this.#onError = onError;
    mkdirSync(dir, { recursive: true });
    const open = (view: OutputView) =>
      openSync(join(dir, OUTPUT_FILES[view]), "w", 0o640);
    this.#fds = { stdout: open("stdout"), stderr: open("stderr"), all: -1 };
    this.#fds.all = open("all");
    this.#indexFd = openSync(join(dir, INDEX_FILE), "w", 0o640);
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Path of the file holding a view. */
  path(view: OutputView): string {
    return join(this.dir, OUTPUT_FILES[view]);
  }

  /** Path of the chunk index of the `output` file. */
  get indexPath(): string {
    return join(this.dir, INDEX_FILE);
  }

  /** Bytes of one stream captured so far. */
  bytes(stream: OutputStream): number {
    return this.#offsets[stream];
  }

  /** Bytes on disk now: the `output` file and its index. */
  position(): { data: number; index: number } {
    return { data: this.#offsets.all, index: this.#indexBytes };
  }

  /** Bytes the job wrote that could not be stored (disk full, I/O error). */
  get droppedBytes(): number {
    return this.#droppedBytes;
  }

  /**
   * Records a chunk the job wrote. Ignored after `end()`. Never throws: if
   * the files cannot be written (a full disk), the error goes to `onError`
   * once and the rest of the job's output is counted and dropped, so the
   * job and the host go on and readers still see consistent files.
   */
  write(stream: OutputStream, chunk: Buffer): void {
    if (this.#ended || chunk.length === 0) return;
    if (this.#broken) {
      this.#droppedBytes += chunk.length;
      return;
    }
    try {
      writeAll(this.#fds[stream], chunk);
      writeAll(this.#fds.all, chunk);
      this.#record.writeUInt8(STREAM_IDS[stream], 0);
      this.#record.writeUInt32BE(chunk.length, 1);
      writeAll(this.#indexFd, this.#record);
    } catch (err) {
      this.#broken = true;
      this.#droppedBytes += chunk.length;
      this.#onError?.(err);
      return;
    }
    this.#offsets[stream] += chunk.length;
    this.#offsets.all += chunk.length;
    this.#indexBytes += INDEX_RECORD_BYTES;
    for (const { view, h } of this.#followers) {
      if (view === "all" || view === stream) h.data(chunk, stream);
    }
  }

  /** Marks the output complete: closes the files, ends every follower. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const fd of Object.values(this.#fds)) closeSync(fd);
    closeSync(this.#indexFd);
    const followers = [...this.#followers];
    this.#followers.clear();
    for (const { h } of followers) h.end();
  }

  /**
   * Starts a live feed of a view. The caller reads the file up to the
   * returned offset for history; `data` then carries every later byte.
   * When the output has ended already, `end` is called at once.
   */
  follow(view: OutputView, h: FollowHandlers): OutputFollower {
    const offset = this.#offsets[view];
    if (this.#ended) {
      queueMicrotask(() => h.end());
      return { offset, close: () => undefined };
    }
    const entry = { view, h };
    this.#followers.add(entry);
    return { offset, close: () => this.#followers.delete(entry) };
  }
}

function writeAll(fd: number, chunk: Buffer): void {
  let written = 0;
  while (written < chunk.length) {
    written += writeSync(fd, chunk, written, chunk.length - written);
  }
}
