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
 * Followers hear that more was written, after it is on disk; `follow()`
 * pairs the position already on disk with that feed so a reader sees
 * every byte exactly once. Chunks are never kept: readers read the files.
 *
 * A JobOutput either writes the files itself (the docker backend, and
 * `lorne shim` for process jobs) or is a view of files another process
 * writes (the daemon's side of a shim job): `JobOutput.view()`, moved on
 * with `advanceTo()` as the writer reports its position.
 */
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  statSync,
  truncateSync,
  writeSync,
} from "node:fs";
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
  /** More is on disk: `position()` tells how much. */
  data(): void;
  /** Called once when the job's output has ended. */
  end(): void;
}

/** See the module comment. */
export class JobOutput {
  readonly dir: string;
  /** The files, when this object writes them; null for a view. */
  readonly #fds: Record<OutputStream | "index", number> | null;
  #position: OutputPosition = { stdout: 0, stderr: 0, index: 0 };
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
  constructor(
    dir: string,
    onError?: (err: unknown) => void,
    mode: "create" | "view" | "resume" = "create",
  ) {
    this.dir = dir;
    this.#onError = onError;
    if (mode === "view") {
      this.#fds = null;
      return;
    }
    mkdirSync(dir, { recursive: true });
    if (mode === "resume") this.#position = repair(dir);
    // Appending after a repair: every write lands at the end.
    this.#fds = openFiles(dir, mode === "create" ? "w" : "a");
  }

  /**
   * The daemon's view of output another process writes (a shim job): no
   * files are opened; `advanceTo()` moves it on.
   */
  static view(dir: string): JobOutput {
    return new JobOutput(dir, undefined, "view");
  }

  /**
   * Reopens existing output to write more of it (a job re-adopted after
   * the daemon restarted). A chunk torn by a crash (bytes past what the
   * index covers, a partial index record) is cut off first, so the files
   * are consistent again.
   */
  static resume(dir: string, onError?: (err: unknown) => void): JobOutput {
    return new JobOutput(dir, onError, "resume");
  }

  /**
   * The output of a job that has ended, as its files hold it (what its
   * index covers); null when there are none.
   */
  static ended(dir: string): JobOutput | null {
    let fd: number;
    try {
      fd = openSync(join(dir, INDEX_FILE), "r");
    } catch {
      return null;
    }
    try {
      const output = JobOutput.view(dir);
      output.advanceTo(readIndex(fd));
      output.end();
      return output;
    } finally {
      closeSync(fd);
    }
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
    const fds = this.#fds;
    if (fds === null) throw new Error("Cannot write to a view of job output");
    if (this.#broken) {
      this.#droppedBytes += chunk.length;
      return;
    }
    try {
      writeAll(fds[stream], chunk);
      this.#record.writeUInt8(STREAM_IDS[stream], 0);
      this.#record.writeUInt32BE(chunk.length, 1);
      writeAll(fds.index, this.#record);
    } catch (err) {
      this.#broken = true;
      this.#droppedBytes += chunk.length;
      this.#onError?.(err);
      return;
    }
    this.#position[stream] += chunk.length;
    this.#position.index += INDEX_RECORD_BYTES;
    for (const { h } of this.#followers) h.data();
  }

  /**
   * Moves a view on to what its writer reports is on disk (never back).
   * Ignored after `end()`.
   */
  advanceTo(position: OutputPosition, droppedBytes = this.#droppedBytes): void {
    if (this.#ended) return;
    this.#droppedBytes = Math.max(this.#droppedBytes, droppedBytes);
    if (position.index <= this.#position.index) return;
    this.#position = { ...position };
    for (const { h } of this.#followers) h.data();
  }

  /** Marks the output complete: closes the files, ends every follower. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const fd of Object.values(this.#fds ?? {})) closeSync(fd);
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

function openFiles(
  dir: string,
  flags: "w" | "a",
): Record<OutputStream | "index", number> {
  const fds: number[] = [];
  try {
    for (const name of [...Object.values(OUTPUT_FILES), INDEX_FILE]) {
      fds.push(openSync(join(dir, name), flags, 0o640));
    }
  } catch (err) {
    for (const fd of fds) closeSync(fd);
    throw err;
  }
  const [stdout, stderr, index] = fds as [number, number, number];
  return { stdout, stderr, index };
}

// Reads the index to learn what it covers, then cuts off a torn record
// and any stream bytes past what the index covers.
function repair(dir: string): OutputPosition {
  const indexPath = join(dir, INDEX_FILE);
  const fd = openSync(indexPath, "r");
  let position: OutputPosition;
  try {
    position = readIndex(fd);
  } finally {
    closeSync(fd);
  }
  truncateTo(indexPath, position.index);
  for (const stream of ["stdout", "stderr"] as const) {
    truncateTo(join(dir, OUTPUT_FILES[stream]), position[stream]);
  }
  return position;
}

// Sums the lengths of the index's whole records, per stream.
function readIndex(fd: number): OutputPosition {
  const size = fstatSync(fd).size;
  const whole = size - (size % INDEX_RECORD_BYTES);
  const position: OutputPosition = { stdout: 0, stderr: 0, index: whole };
  const batch = Buffer.alloc(INDEX_RECORD_BYTES * 8192);
  for (let at = 0; at < whole;) {
    const got = readSync(fd, batch, 0, Math.min(batch.length, whole - at), at);
    if (got <= 0) break;
    for (let i = 0; i + INDEX_RECORD_BYTES <= got; i += INDEX_RECORD_BYTES) {
      const stream = batch[i] === STREAM_IDS.stdout ? "stdout" : "stderr";
      position[stream] += batch.readUInt32BE(i + 1);
    }
    at += got;
  }
  return position;
}

// Cuts a file to `bytes`; a file shorter than that means the index
// describes output that is not there, which no repair can make right.
function truncateTo(path: string, bytes: number): void {
  const size = statSync(path).size;
  if (size < bytes) {
    throw new Error(
      `Cannot resume output: "${path}" holds ${size} bytes, ` +
        `the index says ${bytes}`,
    );
  }
  if (size > bytes) truncateSync(path, bytes);
}

function writeAll(fd: number, chunk: Buffer): void {
  let written = 0;
  while (written < chunk.length) {
    written += writeSync(fd, chunk, written, chunk.length - written);
  }
}
