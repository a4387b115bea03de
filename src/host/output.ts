/**
 * One job's captured output. Every chunk a backend reads from the job is
 * written at once (synchronously, so the files always hold exactly what
 * was counted) to two files in the job's directory:
 *
 *   stdout.log or stderr.log   the chunk's stream
 *   output.idx                 one record per chunk, in arrival order:
 *                              u8 stream (1 stdout, 2 stderr), u32 BE
 *                              length
 *
 * Each byte is stored once. The interleaved view of both streams is the
 * index read in order, each record taking the next `length` bytes of its
 * stream's file (attach/cursor.ts does that).
 *
 * Followers hear how much was written, after it is on disk; `follow()`
 * pairs the position already on disk with that feed so a reader sees
 * every byte exactly once. Chunks are never kept: readers read the files.
 */
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";

export type OutputStream = "stdout" | "stderr";

/** Which view of the output to read: one stream, or both interleaved. */
export type OutputView = OutputStream | "all";

/** The file of each stream, inside the job's directory. */
export const OUTPUT_FILES: Record<OutputStream, string> = {
  stdout: "stdout.log",
  stderr: "stderr.log",
};

export const INDEX_FILE = "output.idx";
export const INDEX_RECORD_BYTES = 5;
export const STREAM_IDS: Record<OutputStream, number> = {
  stdout: 1,
  stderr: 2,
};

/** How much is on disk: bytes per stream and bytes of the index. */
export interface OutputPosition {
  stdout: number;
  stderr: number;
  index: number;
}

export interface OutputFollower {
  /** What was on disk when following began. */
  position: OutputPosition;
  /** Stops the live feed. */
  close: () => void;
}

export interface FollowHandlers {
  /** `bytes` more of `stream` are on disk, and one more index record. */
  data(stream: OutputStream, bytes: number): void;
  /** Called once when the job's output has ended. */
  end(): void;
}

/** See the module comment. */
export class JobOutput {
  readonly dir: string;
  readonly #fds: Record<OutputStream, number>;
  readonly #indexFd: number;
  readonly #position: OutputPosition = { stdout: 0, stderr: 0, index: 0 };
  readonly #followers = new Set<{ h: FollowHandlers }>();
  readonly #record = Buffer.alloc(INDEX_RECORD_BYTES);
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
    const fds: number[] = [];
    try {
      for (const name of [...Object.values(OUTPUT_FILES), INDEX_FILE]) {
        fds.push(openSync(join(dir, name), "w", 0o640));
      }
    } catch (err) {
      for (const fd of fds) closeSync(fd);
      throw err;
    }
    const [stdout, stderr, index] = fds as [number, number, number];
    this.#fds = { stdout, stderr };
    this.#indexFd = index;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Path of a stream's file. */
  path(stream: OutputStream): string {
    return join(this.dir, OUTPUT_FILES[stream]);
  }

  /** Path of the chunk index. */
  get indexPath(): string {
    return join(this.dir, INDEX_FILE);
  }

  /** Bytes of one stream captured so far. */
  bytes(stream: OutputStream): number {
    return this.#position[stream];
  }

  /** What is on disk now (a copy). */
  position(): OutputPosition {
    return { ...this.#position };
  }

  /** Bytes the job wrote that could not be stored (disk full, I/O error). */
  get droppedBytes(): number {
    return this.#droppedBytes;
  }

  /**
   * Records a chunk the job wrote. `chunk` is only read during the call
   * (the process backend reuses its memory for the next read). Ignored
   * after `end()`. Never throws: if
   * the files cannot be written (a full disk), the error goes to `onError`
   * once and the rest of the job's output is counted and dropped, so the
   * job and the host go on and readers still see consistent files (a
   * chunk counts only once its index record is written; bytes a failed
   * write left behind in a stream's file are past what the index covers).
   */
  write(stream: OutputStream, chunk: Buffer): void {
    if (this.#ended || chunk.length === 0) return;
    if (this.#broken) {
      this.#droppedBytes += chunk.length;
      return;
    }
    try {
      writeAll(this.#fds[stream], chunk);
      this.#record.writeUInt8(STREAM_IDS[stream], 0);
      this.#record.writeUInt32BE(chunk.length, 1);
      writeAll(this.#indexFd, this.#record);
    } catch (err) {
      this.#broken = true;
      this.#droppedBytes += chunk.length;
      this.#onError?.(err);
      return;
    }
    this.#position[stream] += chunk.length;
    this.#position.index += INDEX_RECORD_BYTES;
    for (const { h } of this.#followers) h.data(stream, chunk.length);
  }

  /** Marks the output complete: closes the files, ends every follower. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    closeSync(this.#fds.stdout);
    closeSync(this.#fds.stderr);
    closeSync(this.#indexFd);
    const followers = [...this.#followers];
    this.#followers.clear();
    for (const { h } of followers) h.end();
  }

  /**
   * Starts a live feed of both streams. The caller reads the files up to
   * the returned position for history; `data` then tells of every later
   * chunk. When the output has ended already, `end` is called at once.
   */
  follow(h: FollowHandlers): OutputFollower {
    const position = this.position();
    if (this.#ended) {
      queueMicrotask(() => h.end());
      return { position, close: () => undefined };
    }
    const entry = { h };
    this.#followers.add(entry);
    return { position, close: () => this.#followers.delete(entry) };
  }
}

function writeAll(fd: number, chunk: Buffer): void {
  let written = 0;
  while (written < chunk.length) {
    written += writeSync(fd, chunk, written, chunk.length - written);
  }
}
